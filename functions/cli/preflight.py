"""Checks run before a long pull or any AWS call, so a missing setting costs one line, not a run.

Each check raises UsageError (exit 2) with one line that names the thing and says how to fix it. Cheap checks
(flags, files) come before the ones that call AWS (credentials, the Netskope secret).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

from connectors.finding import GLOBAL_REGION
from connectors.regions import REGIONS
from functions.cli.errors import UsageError
from functions.engine.catalog import CATALOG
from functions.engine.config import Config, check_known_rules, load_config, suggest
from functions.report import summarize_error

if TYPE_CHECKING:  # the ledger module is imported when a command opens one (check_ledger)
    from functions.engine.ledger import Ledger

NO_REGION = ("no AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION, or `region` in your AWS profile)")


def known_regions() -> set[str]:
    """Every region botocore's endpoint data or our region table knows, in every partition."""
    session = boto3.Session()
    regions = set(REGIONS)
    for partition in session.get_available_partitions():
        regions.update(session.get_available_regions("ec2", partition_name=partition))
    return regions


def check_regions(regions: Iterable[str], flag: str = "--region") -> list[str]:
    regions = list(regions)
    known = known_regions()
    for region in regions:
        if region != GLOBAL_REGION and region not in known:
            siblings = sorted(r for r in known if r.rsplit("-", 1)[0] == region.rsplit("-", 1)[0])
            hint = f" (known: {', '.join(siblings)})" if siblings else suggest(region, known)
            raise UsageError(f"{flag}: unknown AWS region {region!r}{hint}")
    return regions


def default_region(flag_hint: str | None = None) -> str:
    """The caller's region (env or profile); a missing one is an error, never a silent us-east-1."""
    region = boto3.Session().region_name
    if not region:
        raise UsageError(NO_REGION + (f", or pass {flag_hint}" if flag_hint else ""))
    check_regions([region], flag="AWS region")
    return region


def check_rule_ids(rule_ids: Iterable[str], flag: str = "--rules") -> None:
    for rule_id in rule_ids:
        if rule_id not in CATALOG:
            hint = suggest(rule_id, CATALOG) or " (cspm-remediate rules lists them)"
            raise UsageError(f"{flag}: unknown rule id {rule_id!r}{hint}")


def check_config(path: str | None) -> Config:
    """The config file, read and validated; unknown rule ids get a suggestion."""
    try:
        config = load_config(path)
    except OSError as error:
        raise UsageError(f"--config {path}: cannot read it ({error.strerror or error}); "
                         "fix the path or unset CSPM_CONFIG") from None
    check_known_rules(config.rules, CATALOG, f"{path}: ")
    return config


def check_ledger(address: str, create: bool = True) -> Ledger:
    """Opens the ledger (a SQLite path or dynamodb://TABLE), or says in one line why it cannot be one.
    create=False for commands that only read one: nothing is created then."""
    from functions.engine.ledger import DYNAMODB_SCHEME, LedgerError, open_ledger

    if address.startswith(DYNAMODB_SCHEME):
        default_region()
    try:
        return open_ledger(address, create=create)
    except LedgerError as error:
        raise UsageError(f"--ledger {error}") from None
    except sqlite3.DatabaseError as error:
        raise UsageError(f"--ledger {address}: not a ledger database ({error}); give a new path or the file a "
                         "previous run created") from None


def check_credentials(sts_call: Any = None) -> dict[str, str]:
    """sts:GetCallerIdentity with the caller's credentials: the one call every AWS path needs anyway."""
    try:
        identity: dict[str, str] = boto3.client("sts").get_caller_identity() if sts_call is None else sts_call()
        return identity
    except NoCredentialsError:
        raise UsageError("no AWS credentials found: run `aws configure` or `aws sso login`, set AWS_PROFILE, "
                         "or export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
    except EndpointConnectionError as error:
        raise UsageError(f"cannot reach AWS STS ({error.kwargs.get('endpoint_url', 'endpoint')}): check the "
                         "network, or AWS_ENDPOINT_URL when using a local emulator") from None
    except ClientError as error:
        raise UsageError(f"AWS credentials rejected by sts:GetCallerIdentity: {summarize_error(error)}; "
                         "refresh them (e.g. `aws sso login`) or pick another AWS_PROFILE") from None
    except BotoCoreError as error:
        raise UsageError(f"AWS credentials: {summarize_error(error)}") from None


def check_netskope(url: str | None, token_secret: str | None) -> None:
    """The flags are there and the secret is readable (the token is cached; the same read serves the pull)."""
    from connectors.netskope import NetskopeError, secret_token_provider

    if not url or not token_secret:
        missing = [name for name, value in (("--netskope-url (NETSKOPE_URL)", url),
                                            ("--netskope-token-secret (NETSKOPE_TOKEN_SECRET)", token_secret))
                   if not value]
        raise UsageError(f"netskope needs --netskope-url and --netskope-token-secret; missing: {', '.join(missing)}")
    try:
        secret_token_provider(token_secret)()
    except NetskopeError as error:
        raise UsageError(f"{error}; check the secret id and that your credentials may "
                         "secretsmanager:GetSecretValue on it") from None
