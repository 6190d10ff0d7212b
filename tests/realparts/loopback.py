"""A scriptable loopback HTTP server that records every request.

It stands in for what a real registry cannot be made to do on demand: answer 500 or 429,
redirect anywhere, challenge with a foreign realm, hang. Tests also use it as a "forbidden"
listener and assert that it recorded no request at all.
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    hang: bool = False  # accept and read the request, then never answer

    @classmethod
    def json(cls, data: object, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
        return cls(status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(data).encode())

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> Reply:
        return cls(status, {"Location": location})

    @classmethod
    def challenge(cls, realm: str, service: str = "test", scheme: str = "Bearer") -> Reply:
        value = f'{scheme} realm="{realm}",service="{service}"' if scheme == "Bearer" else f'{scheme} realm="{realm}"'
        return cls.json(
            {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
            401,
            {"WWW-Authenticate": value, "Docker-Distribution-API-Version": "registry/2.0"},
        )

    @classmethod
    def error(cls, status: int = 500, body: bytes = b"internal error SECRET-BODY") -> Reply:
        return cls(status, {"Content-Type": "text/plain"}, body)

    @classmethod
    def rate_limited(cls, retry_after: str = "30") -> Reply:
        return cls.json(
            {"errors": [{"code": "TOOMANYREQUESTS", "message": "slow down SECRET-BODY"}]},
            429,
            {"Retry-After": retry_after},
        )

    @classmethod
    def hanging(cls) -> Reply:
        return cls(hang=True)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # with the query
    headers: dict[str, str]  # lower-case names
    body: bytes


class LoopbackServer:
    """`server.on("/v2/", Reply(...), ...)`: replies for a path are used in turn, the last one repeats.

    Paths match without the query; "*" matches any path. Unmatched paths get 404.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        self.requests: list[Recorded] = []
        self.connections = 0  # TCP connections accepted, whether or not a request followed
        self._routes: dict[str, list[Reply]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return self._server.server_address[1]

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"

    def on(self, path: str, *replies: Reply) -> LoopbackServer:
        with self._lock:
            self._routes[path] = list(replies)
        return self

    def _next_reply(self, path: str) -> Reply:
        with self._lock:
            replies = self._routes.get(urlsplit(path).path) or self._routes.get("*")
            if not replies:
                return Reply.json({"errors": [{"code": "NOT_FOUND", "message": "no route"}]}, 404)
            return replies.pop(0) if len(replies) > 1 else replies[0]

    def start(self) -> LoopbackServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                with owner._lock:
                    owner.requests.append(Recorded(self.command, self.path, headers, body))
                reply = owner._next_reply(self.path)
                if reply.hang:
                    owner._stopping.wait(60)
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        class Server(ThreadingHTTPServer):
            def verify_request(self, request: object, client_address: object) -> bool:
                with owner._lock:
                    owner.connections += 1
                return True

        self._server = Server((self.host, self._port), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"loopback-{self.host}", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class SilentListener:
    """Accepts TCP connections and never answers a byte: an upstream that hangs before its
    first response header. Counts connections; stop() closes them all."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._sock = socket.create_server((host, 0), backlog=1024)
        self._sock.settimeout(0.2)
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.connections = 0
        threading.Thread(target=self._accept, name="silent-listener", daemon=True).start()

    @property
    def netloc(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"http://{self.netloc}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with self._lock:
                self.connections += 1
                self._open.append(conn)

    def stop(self) -> None:
        self._stopping.set()
        self._sock.close()
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()
