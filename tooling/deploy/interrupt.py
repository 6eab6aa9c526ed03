"""Interrupts: what a Ctrl-C (SIGINT) or a cancelled CI job (SIGTERM) does to a command
that changes stacks (apply, adopt, migrate, destroy).

The first signal sets STOP and nothing more: no exception is raised into the middle of
a call. Every place that would start new work (a change set, an execute, a delete, the
next wave) asks `stopped()` first, and every wait sleeps on STOP, so the workers come
back within one poll. The main thread waits for them at most GRACE_SECONDS more (a call
in flight is bounded by it, not by the AWS read timeout), prints what CloudFormation is
still working on, and the process ends with 130 (SIGINT) or 143 (SIGTERM). A second
signal leaves at once (os._exit: no interpreter shutdown, so no traceback from
threads still running)."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

GRACE_SECONDS = float(os.environ.get("DEPLOY_INTERRUPT_GRACE", "5"))

STOP = threading.Event()
_received: list[int] = []


class Stopped(Exception):
    """Raised at a checkpoint after an interrupt: the step it guards was not started."""


def stopped() -> bool:
    return STOP.is_set()


def checkpoint(what: str) -> None:
    """Before starting `what` (new work): refuse it once an interrupt came."""
    if STOP.is_set():
        raise Stopped(f"interrupted before {what}")


def exit_code() -> int:
    """130 for SIGINT, 143 for SIGTERM (128 + the signal), as shells report them."""
    return 128 + (_received[0] if _received else signal.SIGINT)


def signal_name() -> str:
    return signal.Signals(_received[0]).name if _received else "SIGINT"


def _handler(signum, _frame) -> None:
    _received.append(signum)
    if len(_received) == 1:
        STOP.set()
        _write(f"\ndeploy: {signal.Signals(signum).name}: stopping: no new change set, execute or delete is started; "
               f"waiting up to {GRACE_SECONDS:.0f}s for the calls in flight (again to leave at once)\n")
        return
    _write(f"\ndeploy: {signal.Signals(signum).name} again: leaving now; what was in flight is unknown "
           f"(python deploy.py status shows where each stack is; a plain apply finishes the job)\n")
    os._exit(128 + _received[0])


def _write(text: str) -> None:
    try:
        os.write(sys.stderr.fileno(), text.encode())
    except (OSError, ValueError):
        pass


@contextmanager
def handled():
    """Install the handlers for the duration of a command (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def reset() -> None:
    """Forget an interrupt (tests that run several commands in one process)."""
    STOP.clear()
    _received.clear()


def sleep(seconds: float) -> bool:
    """Sleep, waking at once on an interrupt; True when interrupted."""
    return STOP.wait(seconds)


def parallel(fn, items, on_abandoned=None) -> list:
    """fn(item) for every item, each in its own (daemon) thread; the results in order.
    After an interrupt, waits at most GRACE_SECONDS for threads still in a call, and
    puts on_abandoned(item) in their place (a daemon thread never holds up the exit)."""
    items = list(items)
    results: list = [None] * len(items)
    done = [False] * len(items)
    errors: list[BaseException | None] = [None] * len(items)

    def run(index, item):
        try:
            results[index] = fn(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            errors[index] = exc
        finally:
            done[index] = True

    threads = [threading.Thread(target=run, args=(i, item), daemon=True) for i, item in enumerate(items)]
    for thread in threads:
        thread.start()
    deadline = None
    for index, thread in enumerate(threads):
        while thread.is_alive():
            if STOP.is_set() and deadline is None:
                deadline = time.monotonic() + GRACE_SECONDS
            if deadline is not None and time.monotonic() >= deadline:
                break
            thread.join(0.1)
    for index, item in enumerate(items):
        if not done[index]:
            results[index] = on_abandoned(item) if on_abandoned else None
        elif errors[index] is not None:
            raise errors[index]
    return results


def leave(code: int) -> None:
    """End the process after an interrupt without the interpreter's shutdown (which
    joins threads still in a call): flush what was printed, then exit."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)
