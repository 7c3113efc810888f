"""Reading the files a user hands the CLI: errors name the file and the position, and say the likely fix.

The usual mistakes are a file from the wrong step of the pipeline (raw ASFF or a Netskope response given to
`plan`, the results of `plan` given to `apply`), so the shape of the payload is recognised and the step that
should come first is named.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from typing import Any

from connectors.finding import Finding, FindingError
from functions.cli.errors import UsageError

log = logging.getLogger("cspm_remediate")

_ASFF_KEYS = {"SchemaVersion", "AwsAccountId", "ProductArn", "GeneratorId", "Resources"}
_RESULT_KEYS = {"outcome", "reason", "run_id"}
_PROWLER_OCSF_KEYS = {"metadata", "finding_info", "status_code"}


def read_json(path: str) -> Any:
    """The parsed file; OSError and bad JSON become one line naming the file (and line/column)."""
    name = "standard input" if path == "-" else path
    try:
        if path == "-":
            if sys.stdin.isatty():
                log.info("reading findings from standard input (pipe them in, or give a FILE)")
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
    except FileNotFoundError:
        raise InputError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{name}: is a directory, not a JSON file") from None
    except UnicodeDecodeError as error:
        raise InputError(f"{name}: not UTF-8 text (byte {error.start}); is it the right file?") from None
    except OSError as error:
        raise InputError(f"{name}: cannot read it ({error.strerror or error})") from None
    if not text.strip():
        raise InputError(f"{name}: empty; expected JSON")
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{name}: not valid JSON at line {error.lineno} column {error.colno}: {error.msg}") from None


class InputError(UsageError, ValueError):
    """A file the command cannot use at all (normalize reports it and goes on with the other files)."""


def shape_hint(payload: Any, path: str) -> str | None:
    """What a payload that is not a findings array looks like, and what to do with it."""
    name = "-" if path == "-" else path
    items: list[Any]
    if isinstance(payload, Mapping):
        found = payload.get("Findings")
        if isinstance(found, list) and found and all(isinstance(f, Mapping) and "finding_info" in f for f in found[:5]):
            return f"this is a raw Security Hub OCSF response (GetFindingsV2); run `cspm-remediate normalize " \
                   f"--source securityhub-v2 {name}` first and give its output"
        if "Findings" in payload or isinstance(payload.get("detail"), Mapping) or _ASFF_KEYS & set(payload):
            return f"this is raw Security Hub (ASFF) data; run `cspm-remediate normalize --source securityhub " \
                   f"{name}` first and give its output"
        if payload.get("kind") == "cspm-remediate plan":
            return f"this is a plan file (plan --out); apply it with: cspm-remediate apply --plan {name}"
        if "data" in payload:
            return f"this is a raw Netskope response; run `cspm-remediate normalize --source netskope {name}` first " \
                   "and give its output"
        items = [payload]
    elif isinstance(payload, list):
        items = payload[:5]
    else:
        return None
    objects = [item for item in items if isinstance(item, Mapping)]
    if objects and all(set(item) >= _PROWLER_OCSF_KEYS for item in objects):
        return f"this is Prowler json-ocsf output; run `cspm-remediate normalize --source prowler {name}` first " \
               "and give its output (or `run --source prowler --input FILE`)"
    if objects and all(set(item) >= _RESULT_KEYS for item in objects):
        return "that is a results file (the output of plan, apply or run), not findings; give the findings file " \
               "that plan read (the output of normalize or pull)"
    if objects and all(_ASFF_KEYS & set(item) for item in objects):
        return f"these are raw Security Hub (ASFF) findings; run `cspm-remediate normalize --source securityhub " \
               f"{name}` first and give its output"
    return None


def load_findings(path: str) -> tuple[list[Finding], int]:
    """The findings of a normalize/pull output file, and how many entries were rejected (each logged with its
    position). A file of another shape is refused as a whole, with the step that should come first."""
    payload = read_json(path)
    name = "standard input" if path == "-" else path
    hint = shape_hint(payload, path)
    if hint:
        raise InputError(f"{name}: not a findings array: {hint}")
    if not isinstance(payload, list):
        raise InputError(f"{name}: expected a JSON array of findings (the output of normalize or pull)")
    findings, rejected = [], 0
    for index, item in enumerate(payload):
        try:
            findings.append(Finding.from_dict(item))
        except (FindingError, TypeError) as error:
            rejected += 1
            log.error("%s: finding #%d rejected: %s", name, index, error)
    return findings, rejected
