"""Live progress of the stacks of a wave: a redrawn block on a terminal, plain
lines (one per change of state) when the output is a file or a CI log."""
from __future__ import annotations

import sys
import threading


class Progress:
    def __init__(self, stream=None, tty: bool | None = None):
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.rows: dict[str, str] = {}
        self.last: dict[str, str] = {}
        self.drawn = 0
        self.lock = threading.Lock()

    def say(self, text: str) -> None:
        """A permanent line."""
        with self.lock:
            self._erase()
            print(text, file=self.stream, flush=True)
            self._draw()

    def update(self, key: str, status: str, event: str = "") -> None:
        text = f"{status}{'  ' + event if event else ''}"
        with self.lock:
            if self.last.get(key) == text:
                return
            self.last[key] = text
            if self.tty:
                self.rows[key] = text
                self._erase()
                self._draw()
            else:
                print(f"  [{key}] {text}", file=self.stream, flush=True)

    def done(self, key: str) -> None:
        with self.lock:
            self._erase()
            self.rows.pop(key, None)
            self._draw()

    def _erase(self) -> None:
        if self.tty and self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")
            self.drawn = 0

    def _draw(self) -> None:
        if not self.tty:
            return
        width = max((len(k) for k in self.rows), default=0)
        for key, text in self.rows.items():
            self.stream.write(f"  {key.ljust(width)}  {text}"[:200] + "\n")
        self.drawn = len(self.rows)
        self.stream.flush()
