"""A slow network link on loopback: a TCP relay to a real server that sends the server's answers
on at a fixed rate per connection. It makes a transfer last long enough to interrupt it (a
worker killed mid-blob) without changing a byte of what the real server says."""

from __future__ import annotations

import socket
import threading
import time


class SlowLink:
    """`SlowLink(upstream_port, bytes_per_second)`: connect to `.netloc` instead of the upstream."""

    def __init__(self, upstream_port: int, bytes_per_second: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.rate = bytes_per_second
        self._sock = socket.create_server((host, 0))
        self._sock.settimeout(0.2)
        self._stopping = threading.Event()
        threading.Thread(target=self._accept, name="slow-link", daemon=True).start()

    @property
    def netloc(self) -> str:
        host, port = self._sock.getsockname()[:2]
        return f"{host}:{port}"

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._sock.accept()
            except OSError:
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, self.rate), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, rate: int | None) -> None:
        started, sent = time.monotonic(), 0
        try:
            while not self._stopping.is_set():
                data = source.recv(64 * 1024)
                if not data:
                    break
                target.sendall(data)
                sent += len(data)
                if rate:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        time.sleep(ahead)
        except OSError:
            pass
        finally:
            for s in (source, target):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def stop(self) -> None:
        self._stopping.set()
        self._sock.close()
