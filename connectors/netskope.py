"""Netskope CSPM connector: REST API v1 "View Security Assessment Violations" → Finding.

`POST {tenant}/api/v1/security_assessment` with form parameters `cloud_provider=aws`, `status=Failed`, `muted=No`,
optional `rule_name` / `account_id`, `limit` / `skip` for paging and `as_of` (one snapshot time for a whole pull).

Authentication (`NETSKOPE_AUTH`): `v1-body` (default) sends the v1 token as the `token` form field, as the v1 docs
recommend; `header` sends it as the `Netskope-Api-Token` header, which is how RBACv3 service-account tokens (the
REST v2 style) travel. Either way the token is never in the URL (URLs end up in proxy and server logs), nor in a
log line or an exception message.

Paging: the v1 docs require `limit` below 10,000, so a page is at most 9,999. A tenant may cap pages below what
was asked, so a short page proves nothing: paging goes on until an empty page (the API documents no total).
Every page of one pull carries the same `as_of`, so items that change during the pull neither shift the
offsets nor appear twice. The API allows ~24 requests per 5 s and answers 429 past that: requests are retried
with jittered exponential backoff that honours `Retry-After`.

Rule names map to rule ids through `netskope_rules` plus the config file's `netskope.rules`; an unknown name
falls back to the item's `compliance_standards` (a CIS/PCI/FSBP control that maps to exactly one Security Hub
control id), else `netskope:<rule name>`. The server-side filters are re-checked here: a muted or non-failed
item is never yielded by a pull, and a saved one parses as SUPPRESSED / not FAILED so the engine skips it. The
item's `tags` are kept, so tag exclusions work for Netskope findings too.

Netskope has no finding id: the id is a stable hash of rule, account, region and resource (for dedupe), unless
a violation carries its own `_id`. Severity outside Netskope's four levels (or missing) becomes MEDIUM: a
finding must not be dropped for lack of a severity, nor be made to look urgent. Region filtering is done
client-side, because Netskope spells region names its own way.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from connectors import log_hygiene, secrets
from connectors.arns import ArnError, parse_arn, resolve_resource
from connectors.backoff import retry_after_seconds
from connectors.finding import ACCOUNT_ID_RE, Finding, FindingError, stable_finding_id
from connectors.netskope_rules import (
    ARN_RESOURCE_TYPES,
    normalize_rule_name,
    resource_type_for,
    rule_id_for,
    rule_id_from_standards,
)
from connectors.regions import region_code

if TYPE_CHECKING:  # requests, its secret cache and tenacity are imported on the first pull, not with the module:
    # every Lambda and CLI command imports this module (NetskopeError), few pull Netskope (~0.15 s of a cold start)
    import requests
    from aws_secretsmanager_caching import SecretCache
    from tenacity import RetryCallState

log = logging.getLogger(__name__)
log_hygiene.install()  # botocore would log GetSecretValue's response body (the token) at DEBUG

SOURCE = "netskope"
ENDPOINT_PATH = "/api/v1/security_assessment"
DEFAULT_PAGE_SIZE = 5000
MAX_PAGE_SIZE = 9999  # the v1 docs: `limit` is a positive integer below 10,000
AUTH_STYLES = ("v1-body", "header")
DEFAULT_AUTH = "v1-body"
TOKEN_HEADER = "Netskope-Api-Token"  # noqa: S105 - a header name, not a secret
DEFAULT_TIMEOUT = (5.0, 60.0)  # (connect, read) seconds
_LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})

SEVERITY_MAP = {
    "critical": "CRITICAL",
    "high": "HIGH",
    "medium": "MEDIUM",
    "moderate": "MEDIUM",
    "low": "LOW",
    "informational": "INFORMATIONAL",
    "info": "INFORMATIONAL",
}
DEFAULT_SEVERITY = "MEDIUM"
STATUS_MAP = {"failed": "FAILED", "passed": "PASSED", "remediated": "PASSED", "error": "NOT_AVAILABLE"}
_TIMESTAMP_KEYS = ("timestamp", "last_update", "last_updated", "last_seen")


class NetskopeError(Exception):
    """The Netskope API refused or failed a request. Names the HTTP status and Netskope's message, never the token."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class _TransientError(NetskopeError):
    """429, 5xx, timeouts and connection errors: worth another try."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after = retry_after


# ---------------------------------------------------------------------------------------------- configuration


def auth_style(value: str | None) -> str:
    """`v1-body` (default: the v1 `token` form field) or `header` (`Netskope-Api-Token`, RBACv3 tokens)."""
    style = (value or DEFAULT_AUTH).strip().lower()
    if style not in AUTH_STYLES:
        raise NetskopeError(f"NETSKOPE_AUTH must be one of {', '.join(AUTH_STYLES)}, got {value!r}")
    return style


def is_open(finding: Finding) -> bool:
    """Client-side twin of the query's `status=Failed&muted=No`."""
    return finding.compliance_status == "FAILED" and finding.workflow_status != "SUPPRESSED"


def normalize_base_url(url: str) -> str:
    """`tenant.goskope.com` → `https://tenant.goskope.com`; plain http only to this machine (the token would
    otherwise travel in clear). Errors name the host at most: a pasted URL may hold a token."""
    if not isinstance(url, str) or not url.strip():
        raise NetskopeError("the Netskope URL is empty: set --netskope-url / NETSKOPE_URL")
    text = url.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urllib.parse.urlsplit(text)
    if "@" in text or parts.query or parts.fragment or parts.username or parts.password:
        raise NetskopeError("the Netskope URL must not carry credentials, a query string or a fragment")
    scheme, host = parts.scheme.lower(), (parts.hostname or "")
    if scheme not in ("https", "http") or not host:
        raise NetskopeError(f"not a Netskope tenant URL (scheme {scheme or 'none'!r}, expected tenant.goskope.com)")
    try:
        parts.port  # noqa: B018 - validates the port
    except ValueError:
        raise NetskopeError(f"bad port in the Netskope URL for host {host!r}") from None
    if scheme == "http" and host not in _LOCAL_HOSTS:
        raise NetskopeError(
            f"refusing plain http:// to {host}: the API token would travel in clear (use https://; "
            "http is allowed only for 127.0.0.1/localhost test servers)"
        )
    path = parts.path.rstrip("/")
    if path.lower().endswith("/api/v1"):
        path = path[: -len("/api/v1")]
    return f"{scheme}://{parts.netloc}{path}"


# ------------------------------------------------------------------------------------------------- the token

_SECRET_CACHES: dict[tuple[str | None, str | None], SecretCache] = {}
_SECRET_LOCK = threading.Lock()


def secret_token_provider(secret_id: str, client: Any = None) -> Callable[[], str]:
    """A callable returning the API token from Secrets Manager (`{"token": "…"}` JSON or the plain token).

    Reads go through aws-secretsmanager-caching: without `client`, one module-level cache per (region,
    endpoint), so warm Lambda invocations do not call Secrets Manager again; with `client`, a cache bound to it.
    """
    if not isinstance(secret_id, str) or not secret_id.strip():
        raise NetskopeError("no Netskope token secret configured (--netskope-token-secret / NETSKOPE_TOKEN_SECRET)")
    secret_id = secret_id.strip()
    own_cache = _new_secret_cache(client) if client is not None else None

    def provider() -> str:
        cache = own_cache if own_cache is not None else _shared_secret_cache()
        try:
            text = secrets.secret_text(cache, secret_id)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "ClientError")
            raise NetskopeError(f"cannot read the Netskope token from secret {secret_id!r}: {code}") from None
        except (BotoCoreError, UnicodeDecodeError) as exc:
            raise NetskopeError(
                f"cannot read the Netskope token from secret {secret_id!r}: {type(exc).__name__}"
            ) from None
        return token_from_secret(text, secret_id)

    return provider


def token_from_secret(text: str | None, secret_id: str | None = None) -> str:
    """The token in a secret value: `{"token": "…"}` JSON, a JSON string, or the plain token."""
    name = repr(secret_id) if secret_id else "value"
    value = (text or "").strip()
    if value[:1] in ("{", '"'):
        try:
            parsed = json.loads(value)
        except ValueError:
            raise NetskopeError(f"secret {name} starts like JSON but is not valid JSON") from None
        if isinstance(parsed, dict):
            parsed = parsed.get("token")
        value = parsed.strip() if isinstance(parsed, str) else ""
        if not value:
            raise NetskopeError(f'secret {name} holds JSON without a non-empty "token" string')
    if not value:
        raise NetskopeError(f"secret {name} is empty")
    return value


def _new_secret_cache(client: Any) -> SecretCache:
    return secrets.new_secret_cache(client)


def _shared_secret_cache() -> SecretCache:
    return secrets.environment_cache(_SECRET_CACHES, _SECRET_LOCK, _new_secret_cache)


# -------------------------------------------------------------------------------------------- the connector


class NetskopeConnector:
    """Pulls failed, unmuted AWS violations from one Netskope tenant, page by page."""

    source = SOURCE

    def __init__(
        self,
        base_url: str,
        token_provider: Callable[[], str] | str,
        page_size: int = DEFAULT_PAGE_SIZE,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        http: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 6,
        extra_rules: Mapping[str, str] | None = None,
        max_wait: float = 60.0,
        auth: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}, got {page_size!r}")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.auth = auth_style(auth)
        self._clock = clock
        self.base_url = normalize_base_url(base_url)
        self.endpoint = self.base_url + ENDPOINT_PATH
        self.page_size = page_size
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_wait = max_wait  # cap on any single wait, Retry-After included (Lambda time is finite)
        self.extra_rules = dict(extra_rules or {})
        self.requests_made = 0
        self._token_provider = token_provider if callable(token_provider) else (lambda: token_provider)
        if http is None:
            import requests

            http = requests.Session()
        self._http = http
        self._sleep = sleep
        from tenacity import wait_random_exponential

        self._backoff = wait_random_exponential(multiplier=0.5, max=max_wait)

    def fetch(
        self,
        rule_names: Iterable[str] | str | None = None,
        account_id: str | int | None = None,
        region: str | None = None,
    ) -> Iterator[Finding | FindingError]:
        """Findings (and FindingErrors for violations that cannot be read), streamed page by page.

        `rule_names`: exact Netskope rule names, one query each (None → all rules; see
        `netskope_rules.rule_names_for` to query by rule id). `account_id` is sent to the API and re-checked here;
        `region` (a code or display name) is filtered here. Filters are re-checked client-side so that a filter
        the server ignores never widens what gets remediated.
        """
        wanted_region = None
        if region is not None:
            wanted_region = region_code(region)
            if wanted_region is None:
                raise ValueError(f"unknown region {region!r}")
        try:
            wanted_account = _account(account_id) if account_id is not None else None
        except FindingError as exc:
            raise ValueError(f"bad account filter: {exc}") from None
        for index, item in enumerate(self.violations(rule_names, wanted_account)):
            try:
                finding = parse_violation(item, self.extra_rules)
            except FindingError as exc:
                yield FindingError(f"Netskope violation #{index}: {exc}")
                continue
            if not is_open(finding):  # the server was asked for failed, unmuted items only: re-check
                log.debug("Netskope violation #%d dropped: %s/%s", index, finding.compliance_status,
                          finding.workflow_status)
                continue
            if wanted_region and finding.region != wanted_region:
                continue
            if wanted_account and finding.account_id != wanted_account:
                continue
            yield finding

    def violations(self, rule_names: Iterable[str] | str | None = None, account_id: str | None = None) -> Iterator[Any]:
        """The raw violation objects, as Netskope returns them."""
        token = self._token()
        as_of = str(int(self._clock()))  # one snapshot for every page of every query of this pull
        if rule_names is None:
            names: list[str | None] = [None]
        elif isinstance(rule_names, str):
            names = [rule_names]
        else:
            names = list(dict.fromkeys(rule_names))
        for name in names:
            yield from self._pages(token, name, account_id, as_of)

    def _token(self) -> str:
        token = self._token_provider()
        if not isinstance(token, str) or not token.strip():
            raise NetskopeError("the Netskope token provider returned an empty token")
        return token.strip()

    def _pages(self, token: str, rule_name: str | None, account_id: str | None, as_of: str) -> Iterator[Any]:
        """Pages until an empty one: a tenant that caps pages below `page_size` loses nothing, and N items cost
        ⌈N/served⌉+1 requests (served = what the tenant really returns per page)."""
        skip, previous = 0, None
        while True:
            params: dict[str, str] = {"cloud_provider": "aws", "status": "Failed", "muted": "No"}
            if rule_name is not None:
                params["rule_name"] = rule_name
            if account_id is not None:
                params["account_id"] = account_id
            params.update(limit=str(self.page_size), skip=str(skip), as_of=as_of)
            data = self._post(params, token)
            if not data:
                return
            if data == previous:  # a server that ignores `skip` would otherwise be paged forever
                raise NetskopeError(f"Netskope API returned the same page again at skip={skip}: it ignores skip")
            yield from data
            skip, previous = skip + len(data), data

    def _post(self, params: dict[str, str], token: str) -> list[Any]:
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

        retrying = Retrying(
            retry=retry_if_exception_type(_TransientError),
            wait=self._wait,
            stop=stop_after_attempt(self.max_attempts),
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            return retrying(self._post_once, params, token)
        except _TransientError as exc:
            raise NetskopeError(
                f"Netskope API still failing after {self.max_attempts} attempt(s): {exc}", exc.status
            ) from None

    def _post_once(self, params: dict[str, str], token: str) -> list[Any]:
        import requests

        self.requests_made += 1
        log.debug("POST %s %s (auth %s)", self.endpoint, params, self.auth)
        headers = {"Accept": "application/json"}
        if self.auth == "header":
            body, headers[TOKEN_HEADER] = dict(params), token
        else:
            body = {**params, "token": token}
        try:
            response = self._http.post(
                self.endpoint,
                data=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,  # a redirected POST would be replayed as GET, or carry the token elsewhere
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise _TransientError(_scrub(f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}", token)) from None
        except requests.RequestException as exc:
            raise NetskopeError(
                _scrub(f"request to {self.base_url} failed: {type(exc).__name__}: {exc}", token)
            ) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _TransientError(
                f"Netskope API HTTP {status}: {_body_message(response, token)}",
                status,
                retry_after_seconds(response.headers.get("Retry-After")),
            )
        if status >= 300:
            raise NetskopeError(f"Netskope API HTTP {status}: {_body_message(response, token)}", status)
        try:
            payload = response.json()
        except ValueError:
            raise NetskopeError(
                f"Netskope API HTTP {status}: response is not JSON: {_snippet(response.text, token)}", status
            ) from None
        if isinstance(payload, dict) and str(payload.get("status", "")).lower() == "error":
            raise NetskopeError(f"Netskope API HTTP {status}: {_envelope_message(payload, token)}", status)
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list):
            raise NetskopeError(f"Netskope API HTTP {status}: response has no 'data' list", status)
        return data

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.max_wait)
        return float(self._backoff(state))

    def _log_retry(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s; retrying in %.1fs (attempt %d/%d)", error, wait, state.attempt_number, self.max_attempts)


def _scrub(text: str, token: str | None) -> str:
    """Defence in depth: whatever a server or library echoes, the token never leaves in a message."""
    if token:
        for form in {token, urllib.parse.quote_plus(token), urllib.parse.quote(token, safe="")}:
            text = text.replace(form, "***")
    return text


def _snippet(text: str, token: str | None, limit: int = 200) -> str:
    flat = " ".join((text or "").split())
    flat = _scrub(flat, token)
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")


def _envelope_message(payload: Mapping[str, Any], token: str | None) -> str:
    """`{"status": "error", "errorCode": "...", "errors": [...]}` → "errorCode: error; error"."""
    code = payload.get("errorCode")
    errors = payload.get("errors")
    if isinstance(errors, list):
        detail = "; ".join(str(e) for e in errors)
    else:
        detail = str(errors or payload.get("msg") or payload.get("message") or "")
    text = ": ".join(part for part in (str(code) if code else "", detail) if part) or "error (no message)"
    return _scrub(text if len(text) <= 300 else text[:300] + "...", token)


def _body_message(response: requests.Response, token: str | None) -> str:
    try:
        payload = response.json()
    except ValueError:
        return _snippet(response.text, token) if response.text else "(empty body)"
    if isinstance(payload, dict):
        return _envelope_message(payload, token)
    return _snippet(json.dumps(payload), token)


# ------------------------------------------------------------------------------------------------- parsing


def parse_payload(payload: Any, extra_rules: Mapping[str, str] | None = None) -> Iterator[Finding | FindingError]:
    """A Netskope response `{"data": [...]}`, a list of violations, or one violation → Findings.

    A bad item becomes a FindingError naming its index and field, and the batch goes on; a payload of none of
    these shapes raises FindingError at once.
    """
    items = _payload_items(payload)
    return _parse_items(items, extra_rules)


def _parse_items(items: list[Any], extra_rules: Mapping[str, str] | None) -> Iterator[Finding | FindingError]:
    for index, item in enumerate(items):
        try:
            yield parse_violation(item, extra_rules)
        except FindingError as exc:
            yield FindingError(f"item {index}: {exc}")


def _payload_items(payload: Any) -> list[Any]:
    if isinstance(payload, list):
        return payload
    if not isinstance(payload, Mapping):
        raise FindingError(f"not a Netskope payload: expected an object or a list, got {type(payload).__name__}")
    if "data" in payload:
        data = payload["data"]
        if not isinstance(data, list):
            raise FindingError(f"Netskope payload 'data' must be a list of violations, got {type(data).__name__}")
        return data
    if str(payload.get("status", "")).lower() == "error":
        raise FindingError(f"Netskope error response: {_envelope_message(payload, None)}")
    if "rule_name" in payload:
        return [payload]
    keys = ", ".join(sorted(str(k) for k in payload)[:8])
    raise FindingError(
        f'not a Netskope payload: expected {{"data": [...]}}, a list of violations or one violation '
        f"(with rule_name); got an object with keys: {keys[:200] or '(none)'}"
    )


def parse_violation(item: Any, extra_rules: Mapping[str, str] | None = None) -> Finding:
    """One Netskope violation → Finding. Raises FindingError naming the field at fault."""
    if not isinstance(item, Mapping):
        raise FindingError(f"a violation must be a JSON object, got {type(item).__name__}")
    try:
        return _parse_violation(item, extra_rules)
    except ArnError as exc:
        raise FindingError(f"resource_id: {exc}") from None
    except FindingError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        # Safety net: one odd violation must not stop the batch. Every known shape is checked above this.
        raise FindingError(f"unreadable violation ({type(exc).__name__})") from None


def _parse_violation(item: Mapping[str, Any], extra_rules: Mapping[str, str] | None) -> Finding:
    rule_name = _required_text(item, "rule_name")
    rule_id = rule_id_for(rule_name, extra_rules)
    if rule_id.startswith(SOURCE + ":"):
        rule_id = rule_id_from_standards(item.get("compliance_standards")) or rule_id
    netskope_type = item.get("resource_type") or item.get("object_type")
    resource_type = resource_type_for(rule_id, netskope_type)
    raw_resource = _resource_text(item)
    resource_arn = None
    arn_account = arn_region = None
    if raw_resource.startswith("arn:"):
        arn = parse_arn(raw_resource)
        resource_type = resource_type or ARN_RESOURCE_TYPES.get((arn.service, arn.resource_type)) or "Other"
        ref = resolve_resource(resource_type, raw_resource)
        resource_id, resource_arn, arn_account, arn_region = ref.resource_id, ref.arn, ref.account, ref.region
    else:
        resource_id = raw_resource
    resource_type = resource_type or "Other"
    # The resource's own account and region (from its ARN) win over what the reporter says.
    account_id = arn_account or _account(item.get("account_id"))
    region = _region(item, arn_region)
    finding_id = _own_id(item) or stable_finding_id(
        SOURCE, normalize_rule_name(rule_name), account_id, region, resource_id
    )
    return Finding(
        source=SOURCE,
        finding_id=finding_id,
        rule_id=rule_id,
        source_rule=rule_name,
        account_id=account_id,
        region=region,
        resource_type=resource_type,
        resource_id=resource_id,
        resource_arn=resource_arn,
        severity=_severity(item.get("severity")),
        title=_title(rule_name, item),
        compliance_status=_compliance_status(item.get("status")),
        workflow_status="SUPPRESSED" if _muted(item) else None,
        record_state=None,
        standards=_standards(item.get("compliance_standards")),
        first_observed=None,
        last_observed=_last_observed(item),
        tags=_tags(item.get("tags")),
        product_arn=None,
        raw=item,
    )


def _required_text(item: Mapping[str, Any], key: str) -> str:
    value = item.get(key)
    if value is None:
        raise FindingError(f"{key}: missing")
    if not isinstance(value, str) or not value.strip():
        raise FindingError(f"{key}: must be a non-empty string, got {_kind(value)}")
    return value


def _resource_text(item: Mapping[str, Any]) -> str:
    """`resource_id` (the id the AWS API takes, or an ARN); `resource_name` when Netskope gives no id."""
    value = item.get("resource_id")
    if value is None or (isinstance(value, str) and not value.strip()):
        value = item.get("resource_name")
        if value is None or (isinstance(value, str) and not value.strip()):
            raise FindingError("resource_id: missing (and no resource_name)")
        key = "resource_name"
    else:
        key = "resource_id"
    if not isinstance(value, str):
        raise FindingError(f"{key}: must be a string, got {_kind(value)}")
    return value.strip()




def _account(value: Any) -> str:
    """12 digits; an int (Netskope sometimes sends one, losing leading zeros) is zero-padded."""
    if value is None:
        raise FindingError("account_id: missing")
    if isinstance(value, int) and not isinstance(value, bool):
        if 0 <= value < 10**12:
            return f"{value:012d}"
        raise FindingError(f"account_id: {value} is not a 12-digit account id")
    if isinstance(value, str) and ACCOUNT_ID_RE.fullmatch(value.strip()):
        return value.strip()
    raise FindingError(f"account_id: must be 12 digits, got {_kind(value)}")


def _region(item: Mapping[str, Any], arn_region: str | None) -> str:
    if arn_region and region_code(arn_region) == arn_region:
        return arn_region
    value = item.get("region_name")
    if value is None:
        value = item.get("region")
    if value is None:
        raise FindingError("region_name: missing")
    if not isinstance(value, str):
        raise FindingError(f"region_name: must be a string, got {_kind(value)}")
    code = region_code(value)
    if code is None:
        raise FindingError(f"region_name: unknown region {value.strip()[:80]!r}")
    return code


_NOT_MUTED = frozenset({"no", "false", "0", ""})
_MUTED = frozenset({"yes", "true", "1"})


# The query's filter is named `muted`; an item's own field is seen as `muted` or `mute`, and no published schema
# settles which: either one saying Yes holds the violation back.
MUTE_FIELDS = ("muted", "mute")


def _muted(item: Mapping[str, Any]) -> bool:
    """Netskope's mute state ("Yes"/"No"; booleans accepted) in any of MUTE_FIELDS. A value that says neither is an
    error, not a guess: treating an unreadable mute as unmuted could remediate what someone deliberately muted."""
    return any([_mute_value(name, item.get(name)) for name in MUTE_FIELDS])  # a list: every field is checked


def _mute_value(name: str, value: Any) -> bool:
    if value is None or value is False:
        return False
    if value is True:
        return True
    if isinstance(value, str) and value.strip().casefold() in _NOT_MUTED | _MUTED:
        return value.strip().casefold() in _MUTED
    raise FindingError(f"{name}: expected Yes or No, got {_kind(value)}")


def _tags(value: Any) -> dict[str, str]:
    """Resource tags: `{"k": "v"}` or `[{"key"|"Key": k, "value"|"Value": v}, ...]`. Unreadable tags reject the
    violation: dropping them silently would bypass the exclusion tag."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = []
        for entry in value:
            if not isinstance(entry, Mapping):
                raise FindingError(f"tags: each entry must be an object with key and value, got {_kind(entry)}")
            key = entry.get("key", entry.get("Key"))
            pairs.append((key, entry.get("value", entry.get("Value", ""))))
    else:
        raise FindingError(f"tags: expected an object or a list of key/value objects, got {_kind(value)}")
    tags: dict[str, str] = {}
    for key, tag_value in pairs:
        if not isinstance(key, str) or not key:
            raise FindingError(f"tags: a tag key must be a non-empty string, got {_kind(key)}")
        if tag_value is None:
            tag_value = ""
        if not isinstance(tag_value, str | int | float) or isinstance(tag_value, bool):
            raise FindingError(f"tags: the value of {key[:60]!r} must be a string, got {_kind(tag_value)}")
        tags[key] = str(tag_value)
    return tags


def _own_id(item: Mapping[str, Any]) -> str | None:
    value = item.get("_id")
    return f"{SOURCE}:{value.strip()}" if isinstance(value, str) and value.strip() else None


def _severity(value: Any) -> str:
    if isinstance(value, str):
        return SEVERITY_MAP.get(value.strip().casefold(), DEFAULT_SEVERITY)
    return DEFAULT_SEVERITY


def _compliance_status(value: Any) -> str:
    """Absent → FAILED: the query asks for status=Failed, and files saved from it often drop the field."""
    if value is None:
        return "FAILED"
    if not isinstance(value, str):
        raise FindingError(f"status: must be a string, got {_kind(value)}")
    return STATUS_MAP.get(value.strip().casefold(), "NOT_AVAILABLE")


def _title(rule_name: str, item: Mapping[str, Any]) -> str:
    name = item.get("resource_name")
    rule = " ".join(rule_name.split())
    return f"{rule} ({name.strip()})" if isinstance(name, str) and name.strip() else rule


def _standards(value: Any) -> tuple[str, ...]:
    """`compliance_standards`: objects like {"standard", "section", "control"} → "standard section.control"."""
    if not isinstance(value, list):
        return ()
    out: list[str] = []
    for entry in value:
        if isinstance(entry, str) and entry.strip():
            out.append(entry.strip())
        elif isinstance(entry, Mapping):
            standard, section, control = (_part(entry.get(k)) for k in ("standard", "section", "control"))
            text = " ".join(p for p in (standard, ".".join(p for p in (section, control) if p)) if p)
            if text:
                out.append(text)
    return tuple(dict.fromkeys(out))


def _part(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    return " ".join(str(value).split())


def _last_observed(item: Mapping[str, Any]) -> str | None:
    for key in _TIMESTAMP_KEYS:
        value = item.get(key)
        if value is not None:
            return _iso_utc(value)
    return None


def _iso_utc(value: Any) -> str | None:
    """Epoch seconds (or milliseconds), or an ISO-8601 string → `YYYY-MM-DDTHH:MM:SSZ`; None when unreadable."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = float(value) / 1000 if abs(value) > 10**11 else float(value)
            moment = datetime.fromtimestamp(seconds, tz=UTC)
        elif isinstance(value, str) and value.strip():
            text = value.strip()
            if re.fullmatch(r"\d+(\.\d+)?", text):
                return _iso_utc(float(text))
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        else:
            return None
    except (ValueError, OverflowError, OSError):
        return None
    m = moment
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


def _kind(value: Any) -> str:
    """A short description of a bad value: its type, and its text when short (no secrets live in violations)."""
    if isinstance(value, str):
        return repr(value[:60] + ("..." if len(value) > 60 else ""))
    if isinstance(value, bool | int | float) or value is None:
        return repr(value)
    return type(value).__name__


__all__ = [
    "AUTH_STYLES",
    "DEFAULT_PAGE_SIZE",
    "MAX_PAGE_SIZE",
    "NetskopeConnector",
    "NetskopeError",
    "auth_style",
    "is_open",
    "normalize_base_url",
    "parse_payload",
    "parse_violation",
    "secret_token_provider",
    "token_from_secret",
]
