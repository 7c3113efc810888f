"""The catalog seen by the templates: one toggle parameter per rule, its conditions, console groups, and the
rule modes the stacks hand to the functions."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from functions.engine.catalog import CATALOG, CatalogEntry, rule_rows
from functions.remediators.base import MODES
from tools.templates.cfn import Json, equals, not_, ref, sub

CONTROL_ID = re.compile(r"^[A-Za-z0-9]+\.\d+$")  # a Security Hub control id, as EventBridge findings carry it
MAX_RULE_MODES_CHARS = 3_000  # a Lambda's environment holds 4 KB


def toggle_name(rule_id: str) -> str:
    """The CloudFormation parameter of a rule, alphanumeric: `.` spelled `x` (EC2.53 → RuleEC2x53), other
    separators dropped with the next word capitalized (netskope:nacl-allow → RuleNetskopeNaclAllow)."""
    words = re.split(r"[^A-Za-z0-9]+", rule_id.replace(".", "x"))
    return "Rule" + "".join(word[:1].upper() + word[1:] for word in words)


def enabled_condition(rule_id: str) -> str:
    """Target template: the rule may act (dry-run or enforce), so its permissions are granted."""
    return toggle_name(rule_id) + "Enabled"


def active_condition(rule_id: str) -> str:
    """Admin template: the rule is not off (notify included), so its findings are processed."""
    return toggle_name(rule_id) + "Active"


def service_of(rule_id: str) -> str:
    """The console group of a rule: the control's service (EC2.53 → EC2) or the source (netskope:x → netskope)."""
    return re.split(r"[.:]", rule_id, maxsplit=1)[0]


def catalog_entries(catalog: Mapping[str, CatalogEntry] = CATALOG) -> list[CatalogEntry]:
    """The catalog in the natural rule order the `rules` listing uses (EC2.2 before EC2.13)."""
    entries = [catalog[row["rule_id"]] for row in rule_rows(catalog)]
    names: dict[str, str] = {}
    for entry in entries:
        other = names.setdefault(toggle_name(entry.rule_id), entry.rule_id)
        if other != entry.rule_id:
            raise ValueError(f"rules {other} and {entry.rule_id} map to the same parameter {toggle_name(other)}")
    return entries


def toggle_parameter(entry: CatalogEntry) -> Json:
    rule = entry.rule
    notes = []
    if rule.disruptive:
        notes.append("disruptive: acts only when set to enforce here")
    if entry.notify_only:
        notes.append("needs a person: notify only")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    return {
        "Type": "String",
        "Default": rule.default_mode,
        "AllowedValues": ["off", "notify"] if entry.notify_only else list(MODES),
        "Description": f"{rule.rule_id}: {rule.title}{suffix}"[:4000],
    }


def toggle_parameters(entries: Sequence[CatalogEntry]) -> Json:
    return {toggle_name(entry.rule_id): toggle_parameter(entry) for entry in entries}


def toggle_groups(entries: Sequence[CatalogEntry]) -> list[Json]:
    """Console parameter groups: the toggles by service, in catalog order."""
    groups: dict[str, list[str]] = {}
    for entry in entries:
        groups.setdefault(service_of(entry.rule_id), []).append(toggle_name(entry.rule_id))
    return [{"Label": {"default": f"Rules: {service}"}, "Parameters": names} for service, names in groups.items()]


def toggle_labels(entries: Sequence[CatalogEntry]) -> Json:
    return {toggle_name(e.rule_id): {"default": f"{e.rule_id} {e.rule.title}"[:255]} for e in entries}


def enabled_conditions(entries: Sequence[CatalogEntry]) -> Json:
    """Target template: a rule's permissions are granted when its toggle is dry-run or enforce."""
    return {
        enabled_condition(e.rule_id): not_({"Fn::Or": [equals(ref(toggle_name(e.rule_id)), mode)
                                                       for mode in ("off", "notify")]})
        for e in entries
    }


def active_conditions(entries: Sequence[CatalogEntry]) -> Json:
    return {active_condition(e.rule_id): not_(equals(ref(toggle_name(e.rule_id)), "off")) for e in entries}


def runbook_entries(entries: Sequence[CatalogEntry]) -> list[CatalogEntry]:
    return [e for e in entries if e.remediator.runbook is not None and not e.notify_only]


def acting_entries(entries: Sequence[CatalogEntry]) -> list[CatalogEntry]:
    """Rules that can hold permissions: notify-only rules never act."""
    return [e for e in entries if not e.notify_only and e.remediator.permissions]


def control_entries(entries: Sequence[CatalogEntry]) -> list[CatalogEntry]:
    """Rules that are Security Hub controls (the ones EventBridge findings can be filtered on)."""
    return [e for e in entries if CONTROL_ID.match(e.rule_id)]



def rule_modes(entries: Sequence[CatalogEntry]) -> Json:
    """CSPM_RULE_MODES: {rule_id: mode} as JSON, each mode the rule's toggle."""
    text = json.dumps({e.rule_id: f"${{{toggle_name(e.rule_id)}}}" for e in entries}, separators=(",", ":"))
    worst = len(text) + len(entries) * (len("enforce") - len("${}")) - sum(len(toggle_name(e.rule_id)) for e in entries)
    if worst > MAX_RULE_MODES_CHARS:
        raise ValueError(f"CSPM_RULE_MODES may reach {worst} characters: too close to Lambda's 4 KB environment")
    return sub(text)
