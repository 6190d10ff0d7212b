"""The CLI's only HTTP code: one small client for the portal's REST API under /api/v1/."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from portal_cli import __version__

API_PREFIX = "/api/v1/"
DEFAULT_TIMEOUT = 30.0
MAX_PAGE_SIZE = 500
DEBUG_BODY_LIMIT = 4000

REDACTED = "[redacted]"
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-csrftoken"})
# JSON fields whose values are secrets: token, password, secret, *_key, *_token, license_id, … but not has_secret.
_SECRET_FIELD = re.compile(r"(^|_)(token|password|secret|key|license_id)$", re.IGNORECASE)
# Portal API tokens wherever they appear, e.g. echoed back inside an HTML error page.
_TOKEN_VALUE = re.compile(r"\bvp[us]_[A-Za-z0-9_-]{8,}")
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")


class PortalError(Exception):
    """Any failure the CLI reports as one line; `status` is the HTTP status when there was one."""

    def __init__(
        self, message: str, *, status: int | None = None, code: str | None = None, body: dict[str, Any] | None = None
    ) -> None:
        super().__init__(" ".join(message.split()))
        self.status = status
        self.code = code
        self.body = body or {}  # the API's error object, for commands that show more than its message

    @property
    def message(self) -> str:
        return str(self)


def segment(value: str | int) -> str:
    """One path segment from user input, so `portal app rm ../tokens/5` cannot reach another endpoint."""
    text = str(value)
    if text in ("", ".", "..") or not _SEGMENT.match(text):
        raise ValueError(f"not a valid identifier: {text!r}")
    return quote(text, safe="")


def redact(value: Any, *, secrets: tuple[str, ...] = ()) -> Any:
    """A copy of decoded JSON with secret fields and any known secret values replaced."""
    if isinstance(value, dict):
        return {
            k: REDACTED
            if isinstance(k, str) and _SECRET_FIELD.search(k) and not k.startswith("has_") and v not in (None, "")
            else redact(v, secrets=secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, secrets=secrets) for v in value]
    if isinstance(value, str):
        return redact_text(value, secrets=secrets)
    return value


def redact_text(text: str, *, secrets: tuple[str, ...] = ()) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _TOKEN_VALUE.sub(REDACTED, text)


class PortalClient:
    """Bearer-authenticated JSON calls; every failure becomes a PortalError with a one-line reason."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        debug: Callable[[str], None] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._debug = debug
        headers = {"Accept": "application/json", "User-Agent": f"portal-cli/{__version__}"}
        if token:  # without one, only the public endpoints answer (the license signing key)
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            # Never follow redirects: one to another host would carry the token along.
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PortalClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, path: str) -> str:
        return self.base_url + API_PREFIX + path.lstrip("/")

    # The verbs ---------------------------------------------------------------------

    def get(self, path: str, *, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, data: dict[str, Any]) -> Any:
        return self.request("POST", path, json_body=data)

    def patch(self, path: str, data: dict[str, Any]) -> Any:
        return self.request("PATCH", path, json_body=data)

    def put(self, path: str, data: dict[str, Any]) -> Any:
        return self.request("PUT", path, json_body=data)

    def post_files(self, path: str, data: dict[str, str], files: dict[str, tuple[str, bytes, str]]) -> Any:
        """A multipart/form-data POST: form fields and files (name, content, content type)."""
        return self._decode(self._send("POST", path, form=data, files=files))

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def get_text(self, path: str) -> str:
        """A document that is not JSON (a license file, a PEM key); errors still arrive as the API's JSON."""
        return self._get_file(path).text

    def get_bytes(self, path: str) -> bytes:
        """A binary download (an install kit); errors still arrive as the API's JSON."""
        return self._get_file(path).content

    def _get_file(self, path: str) -> httpx.Response:
        response = self._send("GET", path, headers={"Accept": "*/*"})
        if 200 <= response.status_code < 300:
            return response
        self._decode(response)  # raises the API's error
        raise PortalError(
            f"unexpected answer {response.status_code} from {self.url(path)}", status=response.status_code
        )

    def list_all(self, path: str, *, params: dict[str, Any] | None = None) -> list[Any]:
        """Every result of a paginated list, page after page.

        Only the page number is taken from `next`, and the request goes to our own base URL,
        so a server that names another host in `next` never receives the token.
        """
        params = {**(params or {}), "page_size": MAX_PAGE_SIZE}
        results: list[Any] = []
        seen: set[str] = set()
        while True:
            body = self.get(path, params=params)
            if isinstance(body, list):  # an unpaginated list
                return body
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise PortalError(f"unexpected list response from {self.url(path)} (no results)")
            results.extend(body["results"])
            next_url = body.get("next")
            if not next_url:
                return results
            page = parse_qs(urlsplit(next_url).query).get("page", [""])[0]
            if not page or page in seen:
                return results
            seen.add(page)
            params = {**params, "page": page}

    # The one place requests are made ----------------------------------------------

    def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None) -> Any:
        return self._decode(self._send(method, path, params=params, json_body=json_body))

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> httpx.Response:
        url = self.url(path)
        request = self._http.build_request(
            method, url, params=params, json=json_body, headers=headers, data=form, files=files
        )
        self._log_request(request, json_body)
        if files:
            self._log("> " + ", ".join(f"{k}: {name} ({len(data)} bytes)" for k, (name, data, _) in files.items()))
            self._log("> " + json.dumps(redact(form or {}, secrets=(self._token,)), ensure_ascii=False))
        started = time.monotonic()
        try:
            response = self._http.send(request)
        except httpx.TimeoutException:
            raise PortalError(
                f"the portal at {self.base_url} did not answer in time (timeout); is it overloaded? "
                "set PORTAL_TIMEOUT to wait longer"
            ) from None
        except httpx.ConnectError as e:
            raise PortalError(self._connect_reason(e)) from None
        except httpx.HTTPError as e:
            raise PortalError(f"cannot talk to the portal at {self.base_url} ({type(e).__name__}: {e})") from None
        self._log_response(response, time.monotonic() - started)
        return response

    def _connect_reason(self, error: httpx.ConnectError) -> str:
        text = str(error)
        lowered = text.lower()
        if "refused" in lowered:
            why = "connection refused"
        elif "name or service not known" in lowered or "name resolution" in lowered or "nodename" in lowered:
            why = "unknown host name"
        elif "ssl" in lowered or "certificate" in lowered:
            why = f"TLS error: {text}"
        else:
            why = text or type(error).__name__
        return f"cannot reach the portal at {self.base_url} ({why}); is it running? set PORTAL_URL"

    def _decode(self, response: httpx.Response) -> Any:
        status = response.status_code
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = None
        if 200 <= status < 300:
            if status == 204 or not response.content:
                return None
            if body is None:
                raise PortalError(
                    f"the server at {self.base_url} answered {response.request.url.path} with something "
                    "other than JSON; is PORTAL_URL the portal?",
                    status=status,
                )
            return body
        if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"].strip():
            message = body["message"]
            code = body.get("code") if isinstance(body.get("code"), str) else None
            if status == 401:
                message = f"{message.rstrip('.')}; check PORTAL_API_TOKEN"
            elif status == 429 and response.headers.get("Retry-After"):
                message = f"{message.rstrip('.')}; retry in {response.headers['Retry-After']} s"
            raise PortalError(message, status=status, code=code, body=body)
        if 300 <= status < 400:
            where = response.headers.get("Location", "elsewhere")
            raise PortalError(
                f"the portal at {self.base_url} redirected {response.request.url.path} to {where}; "
                "set PORTAL_URL to the portal's address (https?)",
                status=status,
            )
        reason = f"HTTP {status} {response.reason_phrase}".strip()
        hint = "; is PORTAL_URL the portal?" if status in (404, 405) else ""
        raise PortalError(
            f"the portal at {self.base_url} answered {response.request.url.path} with {reason}{hint}",
            status=status,
        )

    # --debug ---------------------------------------------------------------------------

    def _log(self, line: str) -> None:
        if self._debug is not None:
            self._debug(redact_text(line, secrets=(self._token,)))

    def _log_request(self, request: httpx.Request, json_body: Any) -> None:
        if self._debug is None:
            return
        self._log(f"> {request.method} {request.url}")
        for name, value in request.headers.items():
            self._log(f"> {name}: {_header_value(name, value)}")
        if json_body is not None:
            self._log("> " + json.dumps(redact(json_body, secrets=(self._token,)), ensure_ascii=False))

    def _log_response(self, response: httpx.Response, elapsed: float) -> None:
        if self._debug is None:
            return
        self._log(f"< {response.status_code} {response.reason_phrase} ({elapsed * 1000:.0f} ms)")
        for name, value in response.headers.items():
            self._log(f"< {name}: {_header_value(name, value)}")
        if not response.content:
            return
        if response.headers.get("Content-Disposition", "").startswith("attachment"):
            self._log(f"< [a file of {len(response.content)} bytes, not shown: it may hold a credential]")
            return
        try:
            text = json.dumps(redact(response.json(), secrets=(self._token,)), ensure_ascii=False)
        except ValueError:
            text = response.text
        if len(text) > DEBUG_BODY_LIMIT:
            text = text[:DEBUG_BODY_LIMIT] + f"… ({len(text) - DEBUG_BODY_LIMIT} more characters)"
        self._log("< " + text)


def _header_value(name: str, value: str) -> str:
    if name.lower() not in _SECRET_HEADERS:
        return value
    scheme, sep, _ = value.partition(" ")
    return f"{scheme} {REDACTED}" if sep and name.lower().endswith("authorization") else REDACTED
