"""Roles a remediator hands to an AWS service with iam:PassRole, created in the target accounts from the
remediators' `service_roles` declarations.

Each param a role's name or resources depend on becomes a target-template parameter (default: the remediator's
default), so the role, its policy and the remediation role's iam:PassRole all follow an operator's override.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from functions.engine.catalog import CatalogEntry
from functions.remediators.base import Remediator, ServiceRole
from tools.templates.cfn import Json, ref, sub
from tools.templates.iam import statement
from tools.templates.parameters import Constraint


def param_constraint(remediator: type[Remediator], param: str, max_length: int) -> Constraint:
    """A remediator parameter passed to the target template: its params schema's pattern."""
    pattern = remediator.params_schema[param].pattern or ".+"
    return Constraint(f"^{pattern}$", max_length, f"a {param} matching {pattern}")


def param_parameter(remediator: type[Remediator], param: str) -> str:
    """The template parameter holding a remediator's param: VpcFlowLogs + delivery_role_name →
    VpcFlowLogsDeliveryRoleName."""
    return remediator.__name__ + "".join(word.capitalize() for word in param.split("_"))


@dataclass(frozen=True)
class DeclaredRole:
    """A service role as one remediator declares it."""

    remediator: type[Remediator]
    role: ServiceRole

    @property
    def logical_id(self) -> str:
        return self.role.logical_id

    @property
    def service(self) -> str:
        return self.role.service

    def parameter(self, param: str) -> str:
        return param_parameter(self.remediator, param)

    def parameters(self) -> Json:
        rule_ids = ", ".join(rule.rule_id for rule in self.remediator.rules)
        return {self.parameter(param): {
            **param_constraint(self.remediator, param, 64 if param == self.role.name_param else 512).spec(),
            "Default": str(self.remediator.default_params[param]),
            "Description": f"{self.role.logical_id} (handed to {self.role.service} by {rule_ids}): its {param}; "
                           f"keep equal to the admin config's rules.<{rule_ids}>.params.{param} when overridden",
        } for param in self.role.params_used()}

    def role_name(self) -> Json:
        return ref(self.parameter(self.role.name_param))

    def role_arn(self) -> Json:
        return sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/${{{self.parameter(self.role.name_param)}}}")

    def _resource(self, text: str) -> Json | str:
        if text == "*":
            return text
        return sub(re.sub(r"(?<!\$)\{(\w+)\}", lambda m: "${" + self.parameter(m.group(1)) + "}", text))

    def statements(self) -> list[Json]:
        return [statement(f"Service{number}", actions, [self._resource(r) for r in resources]
                          if len(resources) > 1 else self._resource(resources[0]))
                for number, (actions, resources) in enumerate(self.role.statements, start=1)]


def declared_roles(entries: Sequence[CatalogEntry]) -> list[DeclaredRole]:
    """Every service role of the given rules' remediators, once each."""
    found: dict[str, DeclaredRole] = {}
    for entry in entries:
        for role in entry.remediator.service_roles:
            other = found.setdefault(role.logical_id, DeclaredRole(entry.remediator, role))
            if other.remediator is not entry.remediator:
                raise ValueError(f"{other.remediator.__name__} and {entry.remediator.__name__} both declare "
                                 f"service role {role.logical_id}")
    return list(found.values())


def roles_of(remediator: type[Remediator]) -> list[DeclaredRole]:
    return [DeclaredRole(remediator, role) for role in remediator.service_roles]
