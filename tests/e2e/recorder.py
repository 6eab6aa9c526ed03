"""A recording proxy on the loopback: every request passes, unchanged, to the emulator;
each CloudFormation call (the query protocol: a form body with Action=...) is recorded
with its parameters, so a test sees which change sets a run created and executed, as
AWS would have received them. Bound to 127.0.0.1 on a free port; it stops when the test
stops it, and by itself after `lifetime` seconds."""
from __future__ import annotations

import http.client
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class Recorder:
    def __init__(self, upstream: str, lifetime: float = 900):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.calls: list[dict] = []
        self.lock = threading.Lock()
        recorder = self

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
                                pass
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _forward(self):
                body = self._body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "host"}
                headers["Host"] = recorder.upstream.netloc
                if body or self.command in ("POST", "PUT"):
                    headers["Content-Length"] = str(len(body))
                connection = http.client.HTTPConnection(recorder.upstream.hostname, recorder.upstream.port, timeout=300)
                try:
                    connection.request(self.command, self.path, body=body or None, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                finally:
                    connection.close()
                recorder._record(self.headers.get("Content-Type", ""), body, response.status, data)
                self.send_response(response.status)
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

    def _record(self, content_type: str, body: bytes, status: int, response: bytes) -> None:
        if "x-www-form-urlencoded" not in content_type:
            return
        params = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace")))
        if "Action" not in params:
            return
        with self.lock:
            self.calls.append({"action": params["Action"], "params": params, "status": status,
                               "response": response.decode("utf-8", "replace")})

    def actions(self, name: str) -> list[dict]:
        with self.lock:
            return [c for c in self.calls if c["action"] == name]

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()

    def stop(self) -> None:
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()
