"""A small fake of Netskope's REST API v1 `security_assessment` endpoint, for the demo and the tests.

A real HTTP server on 127.0.0.1 (free port, background thread) so the connector is exercised through
`requests`, sockets and all. It implements what the connector relies on:

* `POST` (form-encoded or JSON body) and `GET` on `/api/v1/security_assessment`;
* the token, in the `token` body field (v1) or the `Netskope-Api-Token` header (RBACv3 / REST v2 style): missing
  or wrong → 403 with Netskope's error envelope; a token in the URL query string → 400, so a test proves the
  client never puts it there; `fake.auth_seen` records which style each request used;
* filters `cloud_provider`, `status`, `muted` (exact, case-insensitive), `rule_name`, `account_id` (exact);
* paging with `limit` (1..page_limit_max, else 400; the v1 docs say below 10,000) and `skip`; `page_cap` makes
  the tenant serve fewer items per page than asked (a tenant-side cap); `as_of` is accepted and recorded;
* `{"status": "success", "msg": "", "data": [...]}` responses, and 429 + `Retry-After: 0` for the first
  `fail_first` requests.

Not implemented: other endpoints, other filters (profile, region, severity, resource ids...), Netskope's real
rate limiting, token expiry, and the server's default `limit` (here: page_limit_max).
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ENDPOINT = "/api/v1/security_assessment"
_EXACT_FILTERS = ("rule_name", "account_id")
_CASELESS_FILTERS = ("cloud_provider", "status", "muted")
_DEFAULTS = {"cloud_provider": "aws", "status": "Failed", "muted": "No"}  # assumed for items lacking the field


class FakeNetskope:
    """`with FakeNetskope(violations, token) as fake:` → serve at `fake.url`; `fake.requests` logs params."""

    def __init__(
        self,
        violations: list[dict[str, Any]],
        token: str,
        page_limit_max: int = 9999,
        fail_first: int = 0,
        fail_status: int = 429,
        page_cap: int | None = None,
    ) -> None:
        self.violations = list(violations)
        self.token = token
        self.page_limit_max = page_limit_max
        self.page_cap = page_cap
        self.auth_seen: list[str] = []  # "body" | "header" | "none", per authenticated request
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.requests: list[dict[str, str]] = []  # params of every request received, token removed
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeNetskope is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeNetskope:
        if self._server is None:
            self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
            self._server.daemon_threads = True
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-netskope", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> FakeNetskope:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------------------- request handling

    def handle(
        self, method: str, path: str, body: bytes, content_type: str, header_token: str | None = None
    ) -> tuple[int, dict[str, str], Any]:
        """(status, headers, JSON body) for one request; separate from the socket code so it is easy to read."""
        parts = urllib.parse.urlsplit(path)
        query = _flatten(urllib.parse.parse_qs(parts.query, keep_blank_values=True))
        if parts.path.rstrip("/") != ENDPOINT:
            return 404, {}, _error("Not Found", f"no such endpoint: {parts.path}")
        if method not in ("GET", "POST"):
            return 405, {}, _error("Method Not Allowed", method)
        if "token" in query:
            with self._lock:
                self.requests.append({k: v for k, v in query.items() if k != "token"})
            return 400, {}, _error("Bad Request", "the token must be sent in the request body, not in the URL")
        try:
            params = {**query, **_body_params(body, content_type)}
        except ValueError as exc:
            return 400, {}, _error("Bad Request", str(exc))
        token = params.pop("token", None)
        style = "body" if token is not None else "header" if header_token is not None else "none"
        if token is None:
            token = header_token
        with self._lock:
            self.requests.append(dict(params))
            self.auth_seen.append(style)
            failing = self.fail_first > 0
            if failing:
                self.fail_first -= 1
        if failing:
            return self.fail_status, {"Retry-After": "0"}, _error("Too Many Requests", "rate limit exceeded")
        if token != self.token:
            return 403, {}, _error("Authorization Error", "Invalid token" if token else "Missing token")
        try:
            limit = _int_param(params, "limit", self.page_limit_max, 1, self.page_limit_max)
            skip = _int_param(params, "skip", 0, 0, None)
        except ValueError as exc:
            return 400, {}, _error("Bad Request", str(exc))
        if self.page_cap is not None:
            limit = min(limit, self.page_cap)
        matching = [v for v in self.violations if _matches(v, params)]
        return 200, {}, {"status": "success", "msg": "", "data": matching[skip : skip + limit]}


def _handler_for(fake: FakeNetskope) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, headers, payload = fake.handle(self.command, self.path, body, self.headers.get("Content-Type", ""),
                                                   self.headers.get("Netskope-Api-Token"))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: the default writes request lines (which could hold a misplaced token) to stderr."""

    return Handler


def _body_params(body: bytes, content_type: str) -> dict[str, str]:
    if not body:
        return {}
    if "json" in content_type:
        try:
            parsed = json.loads(body)
        except ValueError:
            raise ValueError("body is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise ValueError("JSON body must be an object")
        return {str(k): str(v) for k, v in parsed.items()}
    return _flatten(urllib.parse.parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True))


def _flatten(params: dict[str, list[str]]) -> dict[str, str]:
    return {key: values[-1] for key, values in params.items()}


def _int_param(params: dict[str, str], name: str, default: int, low: int, high: int | None) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be between {low} and {high}" if high else f"{name} must be ≥ {low}")
    return value


def _matches(violation: dict[str, Any], params: dict[str, str]) -> bool:
    for name in _CASELESS_FILTERS:
        if name in params:
            have = str(violation.get(name, _DEFAULTS[name]))
            if have.casefold() != params[name].casefold():
                return False
    return all(str(violation.get(name)) == params[name] for name in _EXACT_FILTERS if name in params)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"status": "error", "errorCode": code, "errors": [message]}
