"""Pulling findings from the configured sources: the one place the CLI, the demo and the Lambdas share.

Everything here streams: findings are yielded as pages arrive, and rejected inputs are yielded as
FindingError so the caller reports them and goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from connectors import prowler
from connectors.finding import Finding, FindingError
from connectors.netskope import NetskopeConnector, secret_token_provider
from connectors.securityhub import SecurityHubConnector
from connectors.securityhub_v2 import SecurityHubV2Connector
from functions.engine.catalog import CATALOG
from functions.engine.failures import aws_error_code
from functions.engine.sessions import CLIENT_CONFIG

log = logging.getLogger(__name__)

SOURCES = ("securityhub", "securityhub-v2", "netskope", "prowler")
REGIONAL_SOURCES = ("securityhub", "securityhub-v2")  # pulled region by region (CSPM_REGIONS)


@dataclass(frozen=True)
class SourceFacts:
    """What a source supports, for the README's sources table (tools/docs.py renders it; a test keeps it fresh)."""

    reads: str
    auth: str
    paging: str
    events: str
    write_back: str
    where: str  # CLI, Lambda or both


SOURCE_FACTS: dict[str, SourceFacts] = {
    "securityhub": SourceFacts(
        "`GetFindings` (ASFF): failed, active, new/notified findings of the catalog's controls",
        "AWS credentials (`securityhub:GetFindings`)", "100 per page, controls in chunks of 20, per region",
        "`Security Hub Findings - Imported` and `- Custom Action` (Remediate now)",
        "`BatchUpdateFindings`: workflow NOTIFIED / RESOLVED and a note", "CLI and Lambda"),
    "securityhub-v2": SourceFacts(
        "`GetFindingsV2` (OCSF): failed, open (New / In Progress), not closed Security Hub CSPM control findings",
        "AWS credentials (`securityhub:GetFindings` authorizes V2)", "100 per page, controls in chunks of 20, "
        "per region", "`Findings Imported V2` (an EventBridge rule of the admin stack)",
        "`BatchUpdateFindingsV2` by `metadata.uid`: status In Progress / Resolved and a comment",
        "CLI and Lambda (admin stack `Source=securityhub-v2`)"),
    "netskope": SourceFacts(
        "REST v1 security assessment violations (failed, not muted)",
        "API token from Secrets Manager: v1 `token` body field or `Netskope-Api-Token` header (`NETSKOPE_AUTH`)",
        "up to 9,999 per page, one `as_of` snapshot, until an empty page", "—", "—", "CLI and Lambda"),
    "prowler": SourceFacts(
        "a scan's output file: `-M json-ocsf` (or `json-asff`), FAIL findings not muted",
        "none for a local file (`--input FILE`); S3 read access for `s3://BUCKET/KEY` (`CSPM_PROWLER_INPUT`)",
        "the whole file, finding by finding", "—", "—",
        "CLI and Lambda (admin stack `Source=prowler` with `ProwlerBucket` / `ProwlerKey`)"),
}


@dataclass
class PullStats:
    findings: int = 0
    rejected: int = 0
    requests: dict[str, int] = field(default_factory=dict)


def pull_securityhub(
    regions: Sequence[str],
    rule_ids: Iterable[str] | None = None,
    session: boto3.Session | None = None,
    stats: PullStats | None = None,
) -> Iterator[Finding | FindingError]:
    """Open failed findings of the given rules (default: every rule with a remediator), region by region.

    Point it at the Security Hub administrator account (and its aggregation region) to see the whole org.
    """
    session = session or boto3.Session()
    wanted = sorted(rule_ids) if rule_ids else sorted(CATALOG)
    for region in regions:
        connector = SecurityHubConnector(session.client("securityhub", region_name=region, config=CLIENT_CONFIG))
        log.info("pulling Security Hub findings in %s for %d rule(s)", region, len(wanted))
        yield from _counted(connector.fetch(wanted), stats)
        if stats is not None:
            stats.requests[f"securityhub:{region}"] = connector.requests_made


def pull_securityhub_v2(
    regions: Sequence[str],
    rule_ids: Iterable[str] | None = None,
    session: boto3.Session | None = None,
    stats: PullStats | None = None,
) -> Iterator[Finding | FindingError]:
    """Open failed control findings from Security Hub's OCSF API (GetFindingsV2), region by region.

    Point it at the delegated administrator's home region to see the whole organization.
    """
    session = session or boto3.Session()
    wanted = sorted(rule_ids) if rule_ids else sorted(CATALOG)
    for region in regions:
        connector = SecurityHubV2Connector(session.client("securityhub", region_name=region, config=CLIENT_CONFIG))
        log.info("pulling Security Hub OCSF findings in %s for %d rule(s)", region, len(wanted))
        yield from _counted(connector.fetch(wanted), stats)
        if stats is not None:
            stats.requests[f"securityhub-v2:{region}"] = connector.requests_made


def pull_netskope(
    base_url: str,
    token_secret: str,
    rule_names: Iterable[str] | None = None,
    secrets_client: object | None = None,
    stats: PullStats | None = None,
    auth: str | None = None,
    extra_rules: Mapping[str, str] | None = None,
) -> Iterator[Finding | FindingError]:
    """`auth`: NETSKOPE_AUTH (`v1-body` | `header`); `extra_rules`: the config file's `netskope.rules`."""
    connector = NetskopeConnector(base_url, secret_token_provider(token_secret, client=secrets_client),
                                  auth=auth, extra_rules=extra_rules)
    log.info("pulling Netskope violations from %s", connector.base_url)
    yield from _counted(connector.fetch(rule_names=list(rule_names) if rule_names else None), stats)
    if stats is not None:
        stats.requests["netskope"] = connector.requests_made


def pull_prowler(
    paths: Sequence[str],
    rule_ids: Iterable[str] | None = None,
    stats: PullStats | None = None,
    session: boto3.Session | None = None,
) -> Iterator[Finding | FindingError]:
    """Open (FAIL, not muted) findings of Prowler output files (json-ocsf or json-asff), file by file. A path
    `s3://bucket/key` is read from S3 (where a scheduled Prowler run leaves its output for the pull Lambda).

    A file that cannot be read or is not Prowler output is one FindingError naming it; a bad finding is one naming
    the file and its position; the other files and findings go on.
    """
    wanted = frozenset(rule_ids) if rule_ids else None
    for path in paths:
        try:
            items = prowler.parse_payload(prowler.read_output(_read_text(path, session), path))
        except (ClientError, BotoCoreError) as error:
            reason = aws_error_code(error) or type(error).__name__
            yield from _counted([FindingError(f"{path}: cannot read it ({reason})")], stats)
            continue
        except OSError as error:
            yield from _counted([FindingError(f"{path}: cannot read it ({error.strerror or error})")], stats)
            continue
        except UnicodeDecodeError as error:
            yield from _counted([FindingError(f"{path}: not UTF-8 text (byte {error.start})")], stats)
            continue
        except FindingError as error:  # the whole file: not JSON, or not a list of findings
            message = str(error) if str(error).startswith(f"{path}:") else f"{path}: {error}"
            yield from _counted([FindingError(message)], stats)
            continue
        log.info("reading Prowler findings from %s", path)
        yield from _counted(_prowler_open(items, path, wanted), stats)
        if stats is not None:
            stats.requests[f"prowler:{path}"] = 1


def _read_text(path: str, session: boto3.Session | None) -> str:
    if path.startswith("s3://"):
        bucket, _, key = path.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise FindingError(f"{path}: an S3 location is s3://BUCKET/KEY")
        s3 = (session or boto3.Session()).client("s3", config=CLIENT_CONFIG)
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body.decode("utf-8") if isinstance(body, bytes) else str(body)
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _prowler_open(
    items: Iterable[Finding | FindingError], path: str, wanted: frozenset[str] | None
) -> Iterator[Finding | FindingError]:
    for item in items:
        if isinstance(item, FindingError):
            yield FindingError(f"{path}: {item}")
        elif prowler.is_open(item) and (wanted is None or item.rule_id in wanted):
            yield item


def _counted(
    items: Iterable[Finding | FindingError], stats: PullStats | None
) -> Iterator[Finding | FindingError]:
    for item in items:
        if stats is not None:
            if isinstance(item, FindingError):
                stats.rejected += 1
            else:
                stats.findings += 1
        yield item
