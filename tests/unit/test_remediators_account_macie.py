"""Account.1 and Macie.1. Account.1 against moto: the security contact from the params is set and read back, a
second assess is compliant, an existing contact is never overwritten, no params means a refusal with the exact
call, rollback deletes it. Macie.1 against moto (enable) and a botocore Stubber for UpdateMacieSession (resume and
pause), which moto does not implement."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from functions.engine.catalog import CATALOG
from functions.engine.sessions import AssumedSessions
from functions.model import Target
from functions.remediators.account import SecurityContact
from functions.remediators.base import RemediationError
from functions.remediators.macie import MacieEnabled
from tests.factories import ACCOUNT, REGION, make_finding
from tests.unit.test_remediators_s3_helpers import record_calls

CONTACT = {"name": "Security Operations", "email": "soc@example.com", "phone": "+1 206 555 0100", "title": "SOC"}


def account_finding(rule_id: str):
    return make_finding(rule_id, "AwsAccount", f"AWS::::Account:{ACCOUNT}")


def security_contact() -> dict | None:
    client = boto3.client("account", region_name=REGION)
    try:
        return client.get_alternate_contact(AlternateContactType="SECURITY")["AlternateContact"]
    except client.exceptions.ResourceNotFoundException:
        return None


def test_security_contact_is_set_from_the_params_and_removed_by_rollback(target: Target, moto_aws) -> None:
    boto3.client("account", region_name=REGION).put_alternate_contact(
        AlternateContactType="BILLING", Name="Finance", EmailAddress="ap@example.com", PhoneNumber="+1 555 0101",
        Title="AP")
    remediator = SecurityContact(CONTACT)

    before = remediator.assess(target, account_finding("Account.1"))
    assert not before.compliant
    assert before.changes == [f"set the security contact of account {ACCOUNT} to Security Operations "
                              "<soc@example.com>"]
    remediator.apply(target, account_finding("Account.1"), before)

    contact = security_contact()
    assert contact and (contact["Name"], contact["EmailAddress"], contact["PhoneNumber"], contact["Title"]) == (
        "Security Operations", "soc@example.com", "+1 206 555 0100", "SOC")
    assert remediator.assess(target, account_finding("Account.1")).compliant
    billing = boto3.client("account", region_name=REGION).get_alternate_contact(AlternateContactType="BILLING")
    assert billing["AlternateContact"]["Name"] == "Finance"  # the other contacts are not this finding's

    assert remediator.restore(target, account_finding("Account.1"), before.pre_state) == [
        f"deleted the security contact of account {ACCOUNT} again"]
    assert security_contact() is None
    assert remediator.restore(target, account_finding("Account.1"), before.pre_state) == [
        f"account {ACCOUNT} already has no security contact"]


def test_an_existing_security_contact_is_kept(target: Target, moto_aws) -> None:
    boto3.client("account", region_name=REGION).put_alternate_contact(
        AlternateContactType="SECURITY", Name="CISO", EmailAddress="ciso@example.com", PhoneNumber="+1 555 0102",
        Title="CISO")

    assert SecurityContact(CONTACT).assess(target, account_finding("Account.1")).compliant
    assert security_contact()["Name"] == "CISO"


def test_without_a_contact_in_the_params_it_refuses_with_the_call(target: Target, moto_aws) -> None:
    with pytest.raises(RemediationError, match=r"lacks name, email, phone.*put-alternate-contact --account-id"):
        SecurityContact().assess(target, account_finding("Account.1"))


def test_bad_email_param_is_refused() -> None:
    assert "email must match" in (SecurityContact.params_problem({"email": "not-an-address"}) or "")


# -- Macie.1 --------------------------------------------------------------------------------------------------


def test_macie_is_enabled_and_read_back(target: Target, moto_aws) -> None:
    boto3.client("macie2", region_name=REGION).disable_macie()  # moto starts every account with Macie on
    remediator = MacieEnabled()
    calls = record_calls(target.client("macie2"))

    before = remediator.assess(target, account_finding("Macie.1"))
    assert not before.compliant and before.pre_state == {"Status": "NONE"}
    assert before.changes == [f"enable Amazon Macie in account {ACCOUNT} ({REGION}) (billed by the buckets it "
                              "monitors)"]
    remediator.apply(target, account_finding("Macie.1"), before)

    session = boto3.client("macie2", region_name=REGION).get_macie_session()
    assert (session["status"], session["findingPublishingFrequency"]) == ("ENABLED", "FIFTEEN_MINUTES")
    assert remediator.assess(target, account_finding("Macie.1")).compliant
    assert calls == ["GetMacieSession", "EnableMacie", "GetMacieSession"]
    assert CATALOG["Macie.1"].rule.disruption == "cost"


def _stubbed() -> tuple[Target, object]:
    client = boto3.client("macie2", region_name=REGION)
    return Target(ACCOUNT, REGION, "aws", _client_for=lambda service, region: client), client


@pytest.mark.stubber
def test_a_paused_macie_is_resumed_and_rollback_pauses_it() -> None:
    """UpdateMacieSession is not in moto: the documented shapes are stubbed."""
    target, client = _stubbed()
    session = {"status": "PAUSED", "findingPublishingFrequency": "ONE_HOUR"}
    remediator = MacieEnabled()
    with Stubber(client) as stub:
        stub.add_response("get_macie_session", session)
        stub.add_response("update_macie_session", {}, {"status": "ENABLED"})
        stub.add_response("get_macie_session", {**session, "status": "ENABLED"})
        stub.add_response("update_macie_session", {}, {"status": "PAUSED"})
        before = remediator.assess(target, account_finding("Macie.1"))
        assert before.changes == [f"resume the paused Amazon Macie of account {ACCOUNT} ({REGION})"]
        remediator.apply(target, account_finding("Macie.1"), before)
        lines = remediator.restore(target, account_finding("Macie.1"), before.pre_state)
        stub.assert_no_pending_responses()
    assert lines[0].startswith(f"paused Amazon Macie of account {ACCOUNT}")


def test_macie_enabled_before_is_not_rolled_back(target: Target, moto_aws, sessions: AssumedSessions) -> None:
    with pytest.raises(RemediationError, match="was enabled before"):
        MacieEnabled().restore(target, account_finding("Macie.1"), {"Status": "ENABLED"})
