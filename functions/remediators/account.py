"""Account remediators: a security contact for the account (Account.1, CIS v3.0.0 1.2).

Account.1 fails while the account has no SECURITY alternate contact. Who that contact is cannot be guessed, so the
rule acts only with the contact given in its params (`name`, `email`, `phone`, `title`: a team mailbox and number,
the same for every account); without them it refuses with the exact call to make. An existing security contact is
never overwritten (the control passes with any). Rollback deletes the contact this run added.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from connectors.finding import Finding
from functions.engine.failures import aws_error_code
from functions.model import Target
from functions.remediators.base import Assessment, Param, RemediationError, Remediator, Rule

_CONTACT = ("name", "email", "phone", "title")


class SecurityContact(Remediator):
    """Account.1: set the account's SECURITY alternate contact from the params (one GetAlternateContact to check)."""

    rules = (Rule("Account.1", "Security contact information should be provided for an AWS account", cis=("1.2",)),)
    resource_types = ("AwsAccount",)
    read_permissions = ("account:GetAlternateContact",)
    write_permissions = ("account:PutAlternateContact",)
    restore_permissions = ("account:DeleteAlternateContact",)
    reversible = True
    side_effects = "AWS sends security notifications for the account to this contact as well"
    params_schema = {
        "name": Param(None, str, pattern=r".{1,64}", description="the security contact's name (a team)"),
        "email": Param(None, str, pattern=r"[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,63}"),
        "phone": Param(None, str, pattern=r"[+]?[\d\s()-]{5,25}"),
        "title": Param("Security", str, pattern=r".{1,50}"),
    }

    def assess(self, target: Target, finding: Finding) -> Assessment:
        if self._current(target):
            return Assessment(compliant=True, pre_state={"SecurityContact": True})
        missing = [name for name in _CONTACT if not self.params[name]]
        if missing:
            raise RemediationError(
                f"account {target.account_id} has no security contact and rules.Account.1.params lacks "
                f"{', '.join(missing)}; or set it by hand: aws account put-alternate-contact --account-id "
                f"{target.account_id} --alternate-contact-type SECURITY --name NAME --email-address EMAIL "
                "--phone-number PHONE --title TITLE")
        contact = {key: self.params[key] for key in _CONTACT}
        return Assessment(
            compliant=False,
            changes=[f"set the security contact of account {target.account_id} to {contact['name']} "
                     f"<{contact['email']}>"],
            pre_state={"SecurityContact": False},
            context=contact,
        )

    def apply(self, target: Target, finding: Finding, assessment: Assessment) -> None:
        contact = assessment.context
        target.client("account").put_alternate_contact(
            AlternateContactType="SECURITY", Name=contact["name"], EmailAddress=contact["email"],
            PhoneNumber=contact["phone"], Title=contact["title"])

    def restore(self, target: Target, finding: Finding, pre_state: Mapping[str, Any]) -> list[str]:
        if pre_state.get("SecurityContact") is not False:
            raise RemediationError(f"account {target.account_id} had a security contact before: nothing to undo")
        if not self._current(target):
            return [f"account {target.account_id} already has no security contact"]
        target.client("account").delete_alternate_contact(AlternateContactType="SECURITY")
        return [f"deleted the security contact of account {target.account_id} again"]

    @staticmethod
    def _current(target: Target) -> dict[str, Any] | None:
        try:
            contact: dict[str, Any] = target.client("account").get_alternate_contact(AlternateContactType="SECURITY")[
                "AlternateContact"]
            return contact
        except ClientError as error:
            if aws_error_code(error) == "ResourceNotFoundException":
                return None
            raise
