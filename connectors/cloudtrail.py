"""CloudTrail management events ("AWS API Call via CloudTrail" on EventBridge) → findings to re-check now.

An event is not a verdict: it says a call *may* have broken a control (connectors/cloudtrail_events.py says which).
So each finding is FAILED only in the sense the engine needs to look at it (`compliance_status` FAILED, no workflow
or record state): the remediator's `assess` reads the resource and decides, and a call that left the resource
compliant ends `noop`, never an action.

Not translated, each with a logged reason: failed calls (`errorCode` set: nothing changed), read-only calls, calls
made by our own roles (remediation, automation, rollback: acting on them would loop, or undo a rollback), events not
in the table, and rows whose record names no resource (DeleteFlowLogs). Ids: one finding per (rule, resource) of
an event, `finding_id` = `cloudtrail:<eventID>:<rule>:<resource>`, `last_observed` = the event's time, so a
redelivered event is one action (the ledger's key) and a later call on the same resource is a new observation.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.arns import ArnError, parse_arn
from connectors.cloudtrail_events import ACCOUNT, EventRow, rows_for
from connectors.finding import ACCOUNT_ID_RE, REGION_CODE_RE, Finding, FindingError, partition_for_region

log = logging.getLogger(__name__)

SOURCE = "cloudtrail"
DETAIL_TYPE = "AWS API Call via CloudTrail"
SEVERITY = "MEDIUM"  # an event says a control may be broken, not how badly: assess and the rule decide
# The role names the deployed stacks use by default (tools/templates/defaults.py, functions/engine/automation.py,
# tools/templates/target.py), ignored even when the environment names others: their calls are ours.
DEFAULT_OWN_ROLES = ("CSPMRemediationRole", "CSPMRemediationAutomation", "CSPMRemediationRollbackRole")
# Environment: the configured role names (DESIGN §5) and any further roles whose calls must not trigger work.
OWN_ROLE_VARIABLES = ("REMEDIATION_ROLE_NAME", "REMEDIATION_AUTOMATION_ROLE_NAME", "REMEDIATION_ROLLBACK_ROLE_NAME",
                      "CSPM_EVENTS_IGNORE_ROLES")

_QUEUE_URL_RE = re.compile(r"https://[A-Za-z0-9.-]+/([0-9]{12})/([A-Za-z0-9_-]{1,80}(\.fifo)?)/?")
_PARTIAL_LAMBDA_ARN_RE = re.compile(r"[0-9]{12}:function:(.+)")
_MAX_ID = 1024


@dataclass(frozen=True)
class Translation:
    """What became of one CloudTrail record: findings to re-check, or why none."""

    findings: tuple[Finding, ...]
    ignored: str | None = None  # why the event gives no work (failed call, our own role, not watched, ...)
    event: str = ""  # "eventSource:eventName eventID" for log lines


def own_role_names(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Our roles: the defaults, the configured names, and CSPM_EVENTS_IGNORE_ROLES (comma-separated)."""
    environ = os.environ if environ is None else environ
    names = set(DEFAULT_OWN_ROLES)
    for variable in OWN_ROLE_VARIABLES:
        names.update(part.strip() for part in environ.get(variable, "").split(",") if part.strip())
    return frozenset(names)


def iter_records(payload: Any) -> Iterator[Any]:
    """The CloudTrail records in a payload: an EventBridge event (its detail), a bare record, a CloudTrail log
    file ({"Records": [...]}) or a list of any of these. FindingError for another shape."""
    if isinstance(payload, list):
        for item in payload:
            if isinstance(item, list) or (isinstance(item, Mapping) and "Records" in item):
                yield from iter_records(item)
            else:
                yield item
        return
    if not isinstance(payload, Mapping):
        raise FindingError(f"expected a CloudTrail event, record, log file or list; got {_kind(payload)}")
    if "Records" in payload:
        if not isinstance(payload["Records"], list):
            raise FindingError("CloudTrail log file: Records is not a list")
        yield from payload["Records"]
        return
    yield payload


def translate(event: Any, own_roles: Iterable[str] = DEFAULT_OWN_ROLES) -> Translation:
    """One EventBridge event or bare CloudTrail record → Translation. FindingError when it is malformed."""
    if not isinstance(event, Mapping):
        raise FindingError(f"a CloudTrail event must be an object, got {_kind(event)}")
    envelope_account = None
    record: Any = event
    if "detail" in event:
        if event.get("detail-type") != DETAIL_TYPE:
            raise FindingError(f"not a CloudTrail API call event (detail-type {_short(event.get('detail-type'))})")
        record = event["detail"]
        envelope_account = event.get("account")
        if not isinstance(record, Mapping):
            raise FindingError(f"detail must be an object, got {_kind(record)}")
    source, name = _text(record, "eventSource"), _text(record, "eventName")
    event_id = _text(record, "eventID")
    label = f"{source}:{name} {event_id}"

    def ignored(reason: str) -> Translation:
        return Translation((), reason, label)

    account = _account(record, envelope_account)
    region = _text(record, "awsRegion")
    if not REGION_CODE_RE.fullmatch(region):
        raise FindingError(f"awsRegion is not a region code: {_short(region)}")
    if record.get("errorCode"):
        return ignored(f"the call failed ({str(record.get('errorCode'))[:80]}): nothing changed")
    if record.get("readOnly") is True:
        return ignored("a read-only call")
    rows = rows_for(source, name)
    if not rows:
        return ignored("not an event that can break a watched rule")
    role = _own_role(record.get("userIdentity"), frozenset(own_roles))
    if role:
        return ignored(f"made by our own role {role}: acting on it would loop")
    observed = _text(record, "eventTime")
    findings: list[Finding] = []
    notes = []
    for row in rows:
        resources = _resources(row, record, account, region)
        if not resources:
            notes.append(row.note or f"the record names no {row.resource_type}")
        for resource_id, arn in resources:
            findings.extend(_finding(row, rule, record, account, region, resource_id, arn, event_id, observed)
                            for rule in row.rules)
    if not findings:
        return ignored("; ".join(dict.fromkeys(notes)))
    return Translation(tuple(findings), None, label)


def parse_payload(payload: Any, own_roles: Iterable[str] | None = None) -> Iterator[Finding | FindingError]:
    """Every record's findings; a malformed record yields one FindingError naming its index, an ignored one is
    logged with its reason (INFO), and the rest go on. own_roles: default from the environment."""
    roles = own_role_names() if own_roles is None else frozenset(own_roles)
    for index, record in enumerate(iter_records(payload)):
        try:
            translation = translate(record, roles)
        except FindingError as error:
            yield FindingError(f"event #{index}: {error}")
            continue
        if translation.ignored:
            log.info("event #%d %s ignored: %s", index, translation.event, translation.ignored)
        yield from translation.findings


# -- the record ----------------------------------------------------------------------------------------------------
def _account(record: Mapping[str, Any], envelope_account: Any) -> str:
    """The account the call was made in. An EventBridge envelope from another account than the record's is refused:
    forwarding keeps the source account, so a mismatch means a forged or garbled event."""
    account = record.get("recipientAccountId")
    if not isinstance(account, str) or not ACCOUNT_ID_RE.fullmatch(account):
        raise FindingError(f"recipientAccountId must be 12 digits, got {_short(account)}")
    if envelope_account is not None and envelope_account != account:
        raise FindingError(f"the event comes from account {_short(envelope_account)} but the call was made in "
                           f"{account}")
    return account


def _own_role(identity: Any, own_roles: frozenset[str]) -> str | None:
    """The role name when the caller is one of ours (an assumed role: its session issuer, or the assumed-role ARN)."""
    if not isinstance(identity, Mapping):
        return None
    names = []
    issuer = (identity.get("sessionContext") or {}).get("sessionIssuer") \
        if isinstance(identity.get("sessionContext"), Mapping) else None
    if isinstance(issuer, Mapping):
        if isinstance(issuer.get("arn"), str):
            names.append(issuer["arn"].rsplit("/", 1)[-1])
        if isinstance(issuer.get("userName"), str):
            names.append(issuer["userName"])
    arn = identity.get("arn")
    if isinstance(arn, str) and ":assumed-role/" in arn:
        names.append(arn.split(":assumed-role/", 1)[1].split("/", 1)[0])
    return next((name for name in names if name in own_roles), None)


def _walk(node: Any, keys: list[str]) -> Iterator[Any]:
    if not keys:
        yield node
        return
    key, rest = keys[0], keys[1:]
    many = key.endswith("[]")
    key = key.removesuffix("[]")
    if not isinstance(node, Mapping) or key not in node:
        return
    value = node[key]
    if many:
        for item in value if isinstance(value, list) else []:
            yield from _walk(item, rest)
    else:
        yield from _walk(value, rest)


def values_at(record: Mapping[str, Any], path: str, account: str) -> list[str]:
    """The non-empty strings at a table path (ACCOUNT: the account), in record order, without repeats."""
    if path == ACCOUNT:
        return [account]
    found = [v.strip() for v in _walk(record, path.split(".")) if isinstance(v, str) and v.strip()]
    return list(dict.fromkeys(found))


def _resources(row: EventRow, record: Mapping[str, Any], account: str, region: str) -> list[tuple[str, str | None]]:
    """(resource id the API takes, ARN or None) of each resource the row's paths name."""
    ids: list[str] = []
    for path in row.paths:
        ids = values_at(record, path, account)
        if ids:
            break
    arns = [a for path in row.arn_paths for a in values_at(record, path, account)]
    result = []
    for raw in ids:
        if len(raw) > _MAX_ID:
            raise FindingError(f"{row.resource_type} id longer than {_MAX_ID} characters")
        resource_id, arn = _normalise(row, raw, account, region)
        result.append((resource_id, arn or (arns[0] if len(ids) == 1 and arns else None)))
    return result


def _normalise(row: EventRow, raw: str, account: str, region: str) -> tuple[str, str | None]:
    """The id the remediator takes (the name, as scheduled findings carry it) and the ARN when the value is one."""
    if row.id_form == "queue-url":
        match = _QUEUE_URL_RE.fullmatch(raw)
        if not match:
            return raw, None
        return match.group(2), f"arn:{partition_for_region(region)}:sqs:{region}:{match.group(1)}:{match.group(2)}"
    if raw.startswith("arn:"):
        try:
            arn = parse_arn(raw)
        except ArnError as error:
            raise FindingError(f"{row.resource_type}: {error}") from None
        return arn.resource_name, raw
    partial = _PARTIAL_LAMBDA_ARN_RE.fullmatch(raw) if row.resource_type == "AwsLambdaFunction" else None
    if partial:
        return partial.group(1), None
    if row.resource_type == "AwsS3Bucket":
        return raw, f"arn:{partition_for_region(region)}:s3:::{raw}"
    return raw, None


def _finding(row: EventRow, rule: str, record: Mapping[str, Any], account: str, region: str, resource_id: str,
             arn: str | None, event_id: str, observed: str) -> Finding:
    name = record["eventName"]
    who = _caller(record.get("userIdentity"))
    return Finding(
        source=SOURCE,
        finding_id=f"{SOURCE}:{event_id}:{rule}:{resource_id}",
        rule_id=rule,
        source_rule=f"{record['eventSource']}:{name}",
        account_id=account,
        region=region,
        resource_type=row.resource_type,
        resource_id=resource_id,
        resource_arn=arn,
        severity=SEVERITY,
        title=f"{name} on {resource_id}{who} may break {rule}: re-check",
        compliance_status="FAILED",
        workflow_status=None,
        record_state=None,
        first_observed=observed,
        last_observed=observed,
        raw=dict(record),
    )


def _caller(identity: Any) -> str:
    if isinstance(identity, Mapping) and isinstance(identity.get("arn"), str):
        return f" by {identity['arn'][:200]}"
    return ""


def _text(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise FindingError(f"{key}: must be a non-empty string, got {_short(value)}")
    return value


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
