"""A forwarding HTTP proxy on the loopback, in front of the emulator, for tests that must
see or shape the calls a real deploy.py process makes. Bound to 127.0.0.1 on a free
port, served by threads of the test process; it stops when the test stops it, and by
itself after `lifetime` seconds.

Every request is forwarded as it came (bodies read whole, chunked or not). A subclass
sees each one as a `Call`: the CloudFormation action and parameters when the body is a
query-protocol form (Action=...), nothing otherwise. Hooks:

- `before(call)`: return False to drop the request (the connection is closed unanswered);
- `after(call, status, data)`: the answer's body, possibly rewritten, before it is sent."""
from __future__ import annotations

import http.client
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


@dataclass
class Call:
    action: str = ""                             # CloudFormation's Action, "" for other requests
    params: dict = field(default_factory=dict)   # the form's parameters


class LoopbackProxy:
    def __init__(self, upstream: str, lifetime: float = 1800):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass  # trailers
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _forward(self):
                body = self._body()
                call = Call()
                if "x-www-form-urlencoded" in self.headers.get("Content-Type", ""):
                    params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
                    call = Call(params.get("Action", ""), params)
                if not proxy.before(call):
                    self.close_connection = True
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Content-Length"] = str(len(body))
                connection = http.client.HTTPConnection(proxy.upstream.hostname, proxy.upstream.port, timeout=300)
                try:
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    data = proxy.after(call, response.status, response.read())
                finally:
                    connection.close()
                self.send_response(response.status, response.reason)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.timer = threading.Timer(lifetime, self.stop)
        self.timer.daemon = True
        self.timer.start()

    def before(self, call: Call) -> bool:
        return True

    def after(self, call: Call, status: int, data: bytes) -> bytes:
        return data

    def stop(self) -> None:
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
