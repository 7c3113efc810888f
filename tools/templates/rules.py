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
    """Target template: the rule's reads are granted (dry-run or enforce; notify too for one that reads live state
    in notify mode, notify_assesses)."""
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


# What a toggle does, per template: the admin stack decides what the functions do, the target template what the
# roles in that account may do.
TOGGLE_EFFECT = {
    "admin": "off: ignored; notify: a message only; dry-run: assessed and planned; enforce: remediated",
    "target": "off/notify: no permission here; dry-run: its read actions only; enforce: its reads and writes "
              "(and its restore actions in the rollback role when that is enabled)",
}
# The target toggle of a rule that reads live state in notify mode (Remediator.notify_assesses); a rule that can
# also act adds what dry-run and enforce grant.
TARGET_EFFECT_NOTIFY_READS = ("off: no permission here; notify: its read actions (the notification names what is "
                              "read live in this account)")
TARGET_EFFECT_ACTING = "; dry-run: its read actions only; enforce: its reads and writes"


def reads_at_notify(entry: CatalogEntry) -> bool:
    """The rule reads live state in notify mode: its reads are granted at notify too."""
    return entry.remediator.notify_assesses and bool(entry.remediator.permissions_for("read"))


def allowed_modes(entry: CatalogEntry) -> list[str]:
    """notify-only rules stop at notify; a rule whose writes could grant arbitrary privileges never enforces through
    the deployed roles (only from the command line with an operator's own credentials)."""
    if entry.notify_only:
        return ["off", "notify"]
    if entry.remediator.grants_privileges:
        return [mode for mode in MODES if mode != "enforce"]
    return list(MODES)


def toggle_effect(entry: CatalogEntry, template: str) -> str:
    """What the rule's toggle does in that template (its parameter's description says it)."""
    if template == "target" and reads_at_notify(entry):
        return TARGET_EFFECT_NOTIFY_READS + ("" if entry.notify_only else TARGET_EFFECT_ACTING)
    return TOGGLE_EFFECT[template]


def toggle_parameter(entry: CatalogEntry, template: str = "admin") -> Json:
    rule = entry.rule
    notes = []
    if rule.disruptive:
        notes.append("disruptive: the global mode never enforces it, only this toggle")
    if entry.notify_only:
        notes.append("needs a person: notify only")
    elif entry.remediator.grants_privileges:
        notes.append("its writes could grant any IAM policy: enforce only from the command line, never deployed")
    suffix = f" ({'; '.join(notes)})" if notes else ""
    effect = toggle_effect(entry, template)
    return {
        "Type": "String",
        "Default": rule.default_mode,
        "AllowedValues": allowed_modes(entry),
        "Description": f"{rule.rule_id}: {rule.title}{suffix}. {effect}"[:4000],
    }


def toggle_parameters(entries: Sequence[CatalogEntry], template: str = "admin") -> Json:
    return {toggle_name(entry.rule_id): toggle_parameter(entry, template) for entry in entries}


def toggle_groups(entries: Sequence[CatalogEntry]) -> list[Json]:
    """Console parameter groups: the toggles by service, in catalog order."""
    groups: dict[str, list[str]] = {}
    for entry in entries:
        groups.setdefault(service_of(entry.rule_id), []).append(toggle_name(entry.rule_id))
    return [{"Label": {"default": f"Rules: {service}"}, "Parameters": names} for service, names in groups.items()]


def toggle_labels(entries: Sequence[CatalogEntry]) -> Json:
    return {toggle_name(e.rule_id): {"default": f"{e.rule_id} {e.rule.title}"[:255]} for e in entries}


def enabled_conditions(entries: Sequence[CatalogEntry]) -> Json:
    """Target template: a rule's reads are granted when its toggle is dry-run or enforce, or notify for a rule that
    reads live state in notify mode."""
    return {
        enabled_condition(e.rule_id): not_(equals(ref(toggle_name(e.rule_id)), "off")) if reads_at_notify(e) else
        not_({"Fn::Or": [equals(ref(toggle_name(e.rule_id)), mode) for mode in ("off", "notify")]})
        for e in entries
    }


def enforced_condition(rule_id: str) -> str:
    """Target template: the rule may write (its toggle is enforce)."""
    return toggle_name(rule_id) + "Enforced"


def enforced_conditions(entries: Sequence[CatalogEntry]) -> Json:
    return {enforced_condition(e.rule_id): equals(ref(toggle_name(e.rule_id)), "enforce") for e in entries
            if "enforce" in allowed_modes(e)}


def rollback_condition(rule_id: str) -> str:
    """Target template: the rollback role holds the rule's restore actions."""
    return toggle_name(rule_id) + "Rollback"


def active_conditions(entries: Sequence[CatalogEntry]) -> Json:
    return {active_condition(e.rule_id): not_(equals(ref(toggle_name(e.rule_id)), "off")) for e in entries}


def runbook_entries(entries: Sequence[CatalogEntry]) -> list[CatalogEntry]:
    return [e for e in entries if e.remediator.runbook is not None and not e.notify_only]


def acting_entries(entries: Sequence[CatalogEntry]) -> list[CatalogEntry]:
    """Rules that can hold permissions: notify-only rules never act, but one that reads live state in notify mode
    holds its reads."""
    return [e for e in entries if (not e.notify_only or reads_at_notify(e)) and e.remediator.permissions]


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
