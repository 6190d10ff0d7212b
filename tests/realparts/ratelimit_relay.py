"""Docker Hub's pull limit in front of a real Distribution: an HTTP relay on loopback that passes
every request and answer through unchanged and adds, to each manifest answer, the headers Docker
Hub sends (`ratelimit-limit: 100;w=21600`, `ratelimit-remaining: N;w=21600`), N going down by
one with each manifest GET as Docker Hub counts pulls.

Reference: https://docs.docker.com/docker-hub/usage/pulls/
"""

from __future__ import annotations

import http.client
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}
MANIFEST_PATH = re.compile(r"^/v2/.+/manifests/[^/]+$")


class RateLimitRelay:
    """`RateLimitRelay(upstream_netloc, limit=100, window=21600)`: point a registry at `.url`."""

    def __init__(self, upstream: str, *, limit: int = 100, window: int = 21600) -> None:
        self.upstream = upstream
        self.limit, self.window = limit, window
        self.remaining = limit
        self.manifest_gets = 0
        self._lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                relay._relay(self)

            do_HEAD = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="ratelimit-relay", daemon=True).start()

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"

    def _rate_headers(self, method: str, path: str) -> dict[str, str]:
        if not MANIFEST_PATH.match(path.split("?", 1)[0]):
            return {}
        with self._lock:
            if method == "GET":
                self.manifest_gets += 1
                self.remaining = max(0, self.remaining - 1)
            remaining = self.remaining
        return {
            "ratelimit-limit": f"{self.limit};w={self.window}",
            "ratelimit-remaining": f"{remaining};w={self.window}",
        }

    def _relay(self, handler: BaseHTTPRequestHandler) -> None:
        host, port = self.upstream.rsplit(":", 1)
        upstream = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() not in HOP_BY_HOP | {"host"}}
            upstream.request(handler.command, handler.path, headers={**headers, "Host": self.upstream})
            answer = upstream.getresponse()
            extra = self._rate_headers(handler.command, handler.path) if answer.status < 400 else {}
            handler.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP:
                    handler.send_header(name, value)
            for name, value in extra.items():
                handler.send_header(name, value)
            if answer.getheader("content-length") is None and handler.command != "HEAD":
                handler.send_header("Connection", "close")  # the body's end is the connection's
                handler.close_connection = True
            handler.end_headers()
            while chunk := answer.read(64 * 1024):
                handler.wfile.write(chunk)
        finally:
            upstream.close()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
