"""Engine behaviour that does not need AWS: a stub remediator in a private catalog and a stub session cache."""

from __future__ import annotations

from functions.engine.catalog import build_catalog
from functions.engine.config import config_from_dict
from functions.engine.engine import Engine
from functions.model import Target
from functions.remediators.base import Assessment, Remediator, Rule
from tests.factories import make_finding


class StubSessions:
    def target(self, account_id, region, partition="aws", reads=None):
        return Target(account_id, region, partition, _client_for=lambda service, api_region: None)


class CreatesReplacement(Remediator):
    """Like RDS.3: success is a new resource; the finding's own resource stays non-compliant."""

    rules = (Rule("X.1", "replaced, not fixed in place"),)
    resource_types = ("AwsAccount",)
    write_permissions = ("x:Create",)
    reversible = False
    verifies_in_place = False

    def assess(self, target, finding):
        return Assessment(compliant=False, changes=["create replacement"], pre_state={"before": 1})

    def apply(self, target, finding, assessment):
        assessment.context["created"] = {"replacement": "new-1"}


def test_a_replacement_is_reported_started_with_what_it_created():
    engine = Engine(config_from_dict({"mode": "enforce"}), StubSessions(), stage="apply",
                    catalog=build_catalog([CreatesReplacement]))
    (result,) = engine.run([make_finding("X.1", "AwsAccount", "123456789012")])
    assert result.outcome == "started"
    assert "stays open until a person switches over" in result.reason
    assert result.pre_state == {"before": 1, "created": {"replacement": "new-1"}}
