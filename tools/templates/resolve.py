"""A template with its conditions resolved for given parameter values: what CloudFormation would deploy.

Two uses: linting and scanning. cfn-lint solves every combination of a template's conditions with a SAT
solver (several of its rules do), and the target template has one or two conditions per rule toggle: on the
committed file that took over 10 minutes and 11 GB. Linted as renderings with the conditions resolved, each
file takes seconds, and the scanners see the policies a deployment really gets (checkov skips statements inside
`Fn::If`). The renderings `make lint` checks: the defaults, every rule enforced (with rollback and an external
id: every optional resource present), and every rule off; each rule alone (in memory only: tools/scan lints
their policies); the admin stack with its defaults and with every optional feature on.

    python -m tools.templates.resolve build/rendered
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.templates.admin import admin_template
from tools.templates.build import render
from tools.templates.cfn import Json
from tools.templates.target import target_template

_DROP = object()  # what `Ref: AWS::NoValue` and a false-conditioned branch become: the key or item goes


class ResolveError(ValueError):
    """A condition the resolver cannot evaluate (an intrinsic it does not know, a missing parameter)."""


# The pseudo parameters a condition may compare (the forwarding stack: "is this the admin account?"), in a sample
# member account: not the admin one.
SAMPLE_PSEUDO_PARAMETERS = {"AWS::AccountId": "111122223333", "AWS::Region": "us-east-1", "AWS::Partition": "aws"}


def resolve(template: Json, values: Mapping[str, str] | None = None,
            pseudo: Mapping[str, str] = SAMPLE_PSEUDO_PARAMETERS) -> Json:
    """`template` with Conditions evaluated for `values` (parameter defaults for the rest) and the `pseudo`
    parameters: resources and outputs whose condition is false removed, every `Fn::If` replaced by its chosen
    branch, `AWS::NoValue` dropped; the `values` become the parameters' defaults (what the rendering is for)."""
    parameters = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
    unknown = set(values or {}) - set(parameters)
    if unknown:
        raise ResolveError(f"no such parameter(s): {', '.join(sorted(unknown))}")
    parameters.update(values or {})
    parameters.update(pseudo)
    conditions = _Conditions(template.get("Conditions", {}), parameters)
    out: Json = {}
    for key, section in template.items():
        if key == "Conditions":
            continue
        if key == "Parameters":  # a rendering says what it was resolved for: the values become the defaults
            out[key] = {name: {**spec, "Default": values[name]} if name in (values or {}) else spec
                        for name, spec in section.items()}
            continue
        if key in ("Resources", "Outputs"):
            out[key] = {name: _strip_condition(_resolved(body, conditions))
                        for name, body in section.items()
                        if "Condition" not in body or conditions.value(body["Condition"])}
        else:
            out[key] = _resolved(section, conditions)
    return out


class _Conditions:
    def __init__(self, definitions: Mapping[str, Any], parameters: Mapping[str, str]) -> None:
        self._definitions, self._parameters = definitions, parameters
        self._cache: dict[str, bool] = {}

    def value(self, name: str) -> bool:
        if name not in self._cache:
            if name not in self._definitions:
                raise ResolveError(f"no such condition: {name}")
            self._cache[name] = self._evaluate(self._definitions[name])
        return self._cache[name]

    def _evaluate(self, expression: Any) -> bool:
        if not isinstance(expression, dict) or len(expression) != 1:
            raise ResolveError(f"not a condition: {expression!r}")
        (function, argument), = expression.items()
        if function == "Condition":
            return self.value(argument)
        if function == "Fn::Not":
            return not self._evaluate(argument[0])
        if function == "Fn::And":
            return all(self._evaluate(item) for item in argument)
        if function == "Fn::Or":
            return any(self._evaluate(item) for item in argument)
        if function == "Fn::Equals":
            left, right = (self._operand(item) for item in argument)
            return left == right
        raise ResolveError(f"unsupported condition function {function}")

    def _operand(self, item: Any) -> str:
        return str(self._string_value(item))

    def _string_value(self, item: Any) -> str | list[str]:
        """A condition operand: a parameter, a literal, or Fn::Join / Fn::Split / Fn::Select over those (the admin
        stack reads a location's scheme that way)."""
        if isinstance(item, dict) and len(item) == 1:
            (function, argument), = item.items()
            if function == "Ref":
                if argument not in self._parameters:
                    raise ResolveError(f"condition refers to {argument}, which is not a parameter")
                return self._parameters[argument]
            if function == "Fn::Join":
                separator, parts = argument
                return str(separator).join(self._operand(part) for part in parts)
            if function == "Fn::Split":
                separator, text = argument
                return self._operand(text).split(separator)
            if function == "Fn::Select":
                index, items = argument
                values = self._string_value(items)
                if not isinstance(values, list):
                    raise ResolveError(f"Fn::Select over a string: {item!r}")
                return values[int(index)]
        if isinstance(item, str | int | float | bool):
            return str(item)
        raise ResolveError(f"unsupported operand in Fn::Equals: {item!r}")


def _resolved(value: Any, conditions: _Conditions) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            name, when_true, when_false = value["Fn::If"]
            return _resolved(when_true if conditions.value(name) else when_false, conditions)
        if value == {"Ref": "AWS::NoValue"}:
            return _DROP
        items = ((key, _resolved(item, conditions)) for key, item in value.items())
        return {key: item for key, item in items if item is not _DROP}
    if isinstance(value, list):
        return [item for item in (_resolved(item, conditions) for item in value) if item is not _DROP]
    return value


def _strip_condition(body: Json) -> Json:
    return {key: value for key, value in body.items() if key != "Condition"}


# Every optional resource of the target template present: the rollback role (it needs its operator) and the
# ExternalId condition of the trust policy.
TARGET_EVERYTHING = {"Rollback": "enabled", "RollbackOperatorArn": "arn:aws:iam::111111111111:role/SecurityOperator",
                     "ExternalId": "an-external-id-for-linting"}


def rule_toggles(template: Json) -> dict[str, list[str]]:
    """Toggle parameter → its allowed modes (off ... enforce; notify-only and dry-run-only rules stop earlier)."""
    return {name: spec["AllowedValues"] for name, spec in template["Parameters"].items()
            if name.startswith("Rule") and spec.get("AllowedValues", [None])[0] == "off"}


def target_renderings(template: Json | None = None) -> dict[str, Json]:
    """File name → the target template resolved for the three settings `make lint` checks."""
    template = template or target_template()
    toggles = [name for name, modes in rule_toggles(template).items() if "enforce" in modes]
    return {
        "target-defaults.yaml": resolve(template),
        "target-all-enforce.yaml": resolve(template, {**dict.fromkeys(toggles, "enforce"), **TARGET_EVERYTHING}),
        "target-all-off.yaml": resolve(template, dict.fromkeys(rule_toggles(template), "off")),
    }


def rule_alone_renderings(template: Json | None = None) -> Iterator[tuple[str, Json]]:
    """(name, rendering) per rule: its toggle at its most powerful mode (enforce where allowed), every other toggle
    off, rollback enabled, so its reads, writes, runbook and restore statements are seen without any other rule's.
    Generated one at a time, in memory: ~120 renderings, nothing written."""
    template = template or target_template()
    toggles = rule_toggles(template)
    everything_off = dict.fromkeys(toggles, "off")
    for name, modes in toggles.items():
        yield f"target-only-{name}", resolve(template, {**everything_off, name: modes[-1], **TARGET_EVERYTHING})


def admin_renderings(template: Json | None = None) -> dict[str, Json]:
    """The admin stack with its defaults, and with every optional resource: both sources, e-mail, configuration
    in SSM, real-time events, every rule enforced."""
    template = template or admin_template()
    toggles = rule_toggles(template)
    everything = {
        "Source": "both", "NetskopeUrl": "tenant.goskope.com", "NetskopeToken": "a-token-for-linting",
        "NotificationEmail": "security@example.com",
        "ConfigLocation": "ssm:/cspm-remediation/config", "RealTimeEvents": "enabled",
        "ExternalId": "an-external-id-for-linting",
        **{name: modes[-1] for name, modes in toggles.items()},
    }
    return {
        "admin-defaults.yaml": resolve(template),
        "admin-everything.yaml": resolve(template, {k: v for k, v in everything.items()
                                                   if k in template["Parameters"]}),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.templates.resolve", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path, help="directory for the rendered templates")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, template in {**target_renderings(), **admin_renderings()}.items():
        (args.out / name).write_text(render(template), encoding="utf-8")
        print(args.out / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
