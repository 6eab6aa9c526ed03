"""A loopback HTTP proxy in front of the emulator that makes CloudFormation slow the way
AWS is, from outside the code under test (the emulator finishes every stack before
ExecuteChangeSet returns):

- `report_in_progress(stack, status)`: once an ExecuteChangeSet has gone through,
  DescribeStacks of that stack answers `status` (e.g. UPDATE_IN_PROGRESS) until
  `release()`, whatever the emulator has done;
- `hold_executes()`: ExecuteChangeSet requests are held, not forwarded, until
  `release(forward=...)`; forward=False drops them (the connection is closed unanswered).

Everything else is forwarded as it is. Bound to 127.0.0.1, on a free port, in a thread
of the test process; stop() shuts it down."""
from __future__ import annotations

import http.client
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class HoldingProxy:
    def __init__(self, upstream: str):
        parsed = urllib.parse.urlparse(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.lock = threading.Lock()
        self.in_progress: dict[str, str] = {}
        self.after_execute: dict[str, str] = {}
        self.holding = False
        self.released = threading.Event()
        self.forward_held = True
        self.held = 0
        self.actions: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().strip().split(b";")[0], 16)
                        if size == 0:
                            self.rfile.readline()
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self):
                body = self._body()
                form = {}
                if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
                    form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(errors="replace")).items()}
                action = form.get("Action", "")
                if action:
                    with proxy.lock:
                        proxy.actions.append(action)
                if action == "ExecuteChangeSet" and proxy.holding:
                    with proxy.lock:
                        proxy.held += 1
                    proxy.released.wait(300)
                    if not proxy.forward_held:
                        self.close_connection = True
                        return
                connection = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                if action == "ExecuteChangeSet" and response.status == 200:
                    with proxy.lock:
                        proxy.in_progress.update(proxy.after_execute)
                        proxy.after_execute.clear()
                if action == "DescribeStacks" and form.get("StackName") in proxy.in_progress:
                    status = proxy.in_progress[form["StackName"]]
                    data = re.sub(rb"<StackStatus>[A-Z_]+</StackStatus>", f"<StackStatus>{status}</StackStatus>".encode(), data)
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                connection.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def report_in_progress(self, stack: str, status: str) -> None:
        self.after_execute[stack] = status

    def hold_executes(self) -> None:
        self.released.clear()
        self.held = 0
        self.holding = True

    def wait_held(self, timeout: float = 120) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.held:
                return True
            time.sleep(0.1)
        return False

    def release(self, forward: bool = True) -> None:
        self.in_progress.clear()
        self.after_execute.clear()
        self.forward_held = forward
        self.holding = False
        self.released.set()

    def stop(self) -> None:
        self.release()
        self.server.shutdown()
        self.server.server_close()
