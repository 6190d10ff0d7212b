"""nginx as the operator's front proxy in front of the portal (uvicorn), on a free loopback port.

It forwards as docs/custom-domains.md tells operators to: the client's Host in
X-Forwarded-Host (the upstream Host stays nginx's default, the portal's own address, so only a
trusted X-Forwarded-Host can name a custom domain), X-Forwarded-Proto and X-Forwarded-For.
It connects to the portal from `bind` (127.0.0.2 by default), so a test can trust that
address alone (PORTAL_TRUSTED_PROXIES) and still reach the portal directly from 127.0.0.1 as
an untrusted peer.

Clients reach it under a test host name without /etc/hosts: with HTTP_PROXY (and HTTPS_PROXY)
pointing at it, Go (skopeo) and httpx send `GET http://proxy.vendor.test:PORT/v2/ …` to it,
and nginx serves an absolute-URI request like any other, with that Host.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.realparts.distribution import free_port
from tests.realparts.env import stop, wait_for_http

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/tmp/client;
    proxy_temp_path {tmp}/tmp/proxy;
    fastcgi_temp_path {tmp}/tmp/fastcgi;
    uwsgi_temp_path {tmp}/tmp/uwsgi;
    scgi_temp_path {tmp}/tmp/scgi;
    server {{
        listen 127.0.0.1:{port} default_server;
        server_name _;
        client_max_body_size 16k;
        location / {{
            proxy_pass http://{portal};
            proxy_bind {bind};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # $http_host keeps the port this test listens on; on 443 `$host` is the same name.
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
        }}
    }}
{registry}}}
"""

# A team's registry domain: the token service at the portal, the rest of /v2/ at the private
# registry (Distribution), whose challenge names its one configured realm: nginx writes the
# host the client asked for into it, so clients fetch tokens from this name too.
REGISTRY_CONF = """    map $upstream_http_www_authenticate $registry_challenge {{
        '~^(?<head>Bearer realm=")[^"]*(?<tail>".*)$' '${{head}}$scheme://$http_host/v2/token${{tail}}';
        default $upstream_http_www_authenticate;
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name {domain};
        client_max_body_size 0;
        location = /v2/token {{
            proxy_pass http://{portal};
            proxy_bind {bind};
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }}
        location /v2/ {{
            proxy_pass http://{distribution};
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_hide_header WWW-Authenticate;
            add_header WWW-Authenticate $registry_challenge always;
            proxy_buffering off;
            proxy_request_buffering off;
        }}
    }}
"""


@dataclass
class FrontProxy:
    port: int
    directory: Path

    @property
    def url(self) -> str:
        """As an HTTP(S)_PROXY for clients."""
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        parts = [(self.directory / name) for name in ("error.log", "access.log")]
        return "\n".join(p.read_text(errors="replace") for p in parts if p.exists())


@contextmanager
def run_front_proxy(
    directory: Path, portal_netloc: str, *, bind: str = "127.0.0.2", registry: tuple[str, str] | None = None
) -> Iterator[FrontProxy]:
    """nginx in front of the portal; with `registry` (domain, Distribution's host:port), also a
    team's registry domain in front of the private registry."""
    (directory / "tmp").mkdir(parents=True)
    port = free_port()
    conf = directory / "nginx.conf"
    extra = ""
    if registry is not None:
        domain, distribution = registry
        extra = REGISTRY_CONF.format(
            port=port, domain=domain, portal=portal_netloc, bind=bind, distribution=distribution
        )
    conf.write_text(NGINX_CONF.format(tmp=directory, port=port, portal=portal_netloc, bind=bind, registry=extra))
    front = FrontProxy(port, directory)
    process = subprocess.Popen(
        ["/usr/sbin/nginx", "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_http(f"{front.url}/healthz", process, what="nginx", log=front.log)
        yield front
    finally:
        stop(process)
