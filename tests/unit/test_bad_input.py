"""Bad input, 10,000 generated payloads (5,000 ASFF-shaped, 5,000 Netskope-shaped) → normalize → plan.

Wrong types, missing fields, 100 KB strings, unicode, ARNs of the other partitions (aws-cn, aws-us-gov) and
of none (aws-xx…), accounts that are not 12 digits. For every payload:

* normalize (connectors.asff / connectors.netskope parse_payload) never raises anything but FindingError, and
  every rejected input comes with a reason (a non-empty message);
* a resource id that looks like an ARN but does not parse never becomes a Finding;
* the plan (Engine.stream, stage "plan") gives one result per finding, and a finding whose rule is off, or
  that is excluded (account, resource, rule in account, tag), is skipped/excluded with a reason — never
  planned. The engine must not even reach for AWS for those: the fake session cache raises (BaseException,
  so the engine cannot turn it into a `failed` result) if asked for a target only such findings live in, and
  the probe remediators raise if asked to assess such a finding. Everything else is planned by the probes
  (they read nothing and answer "non-compliant"), which shows the check is not vacuous.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import asff, netskope
from connectors.arns import PARTITIONS
from connectors.finding import Finding, FindingError
from connectors.netskope_rules import RULES as NETSKOPE_RULES
from functions.engine.catalog import CATALOG, CatalogEntry
from functions.engine.config import DEFAULT_EXCLUDE_TAG, config_from_dict
from functions.engine.engine import Engine
from functions.model import OUTCOMES, Target
from functions.remediators.base import Assessment, Remediator

EXAMPLES_PER_SOURCE = 5_000
HUGE = 100 * 1024

# -- the configuration under test, and its independent reading (the oracle) ---------------------------------

OFF_RULES = ("EC2.13", "S3.8", "IAM.3", "EC2.7")
EXCLUDED_ACCOUNT = "999999999999"
RULE_EXCLUDED_ACCOUNT = "222222222222"
RULES_EXCLUDED_THERE = ("EC2.14", "CloudTrail.4", "EC2.53")
EXCLUDED_RESOURCES = ("sg-0e0e0e0e0e0e0e0e0", "excluded-bucket", "arn:aws:s3:::excluded-by-arn")
FALSE_TAG_VALUES = ("false", "no", "0", "off")
CONFIG = config_from_dict({
    "mode": "dry-run",
    "rules": {rule: {"mode": "off"} for rule in OFF_RULES},
    "exclude": {"accounts": [EXCLUDED_ACCOUNT], "resources": list(EXCLUDED_RESOURCES),
                "rules_per_account": {RULE_EXCLUDED_ACCOUNT: list(RULES_EXCLUDED_THERE)}},
})
ACTIONS = ("planned", "remediated", "started", "notified")


def must_not_touch(finding: Finding) -> str | None:
    """Why the engine must leave this finding alone, read from the test's own configuration."""
    if finding.rule_id in OFF_RULES:
        return "rule off"
    if finding.account_id == EXCLUDED_ACCOUNT:
        return "account excluded"
    if finding.resource_id in EXCLUDED_RESOURCES or finding.resource_arn in EXCLUDED_RESOURCES:
        return "resource excluded"
    if finding.account_id == RULE_EXCLUDED_ACCOUNT and finding.rule_id in RULES_EXCLUDED_THERE:
        return "rule excluded in account"
    tag = finding.tags.get(DEFAULT_EXCLUDE_TAG)
    if tag is not None and tag.strip().lower() not in FALSE_TAG_VALUES:
        return "excluded by tag"
    return None


_ARN = re.compile(r"^arn:(?P<partition>[^:]*):(?P<service>[^:]+):[^:]*:(?P<account>[^:]*):.+$", re.DOTALL)


def arn_parses(text: str) -> bool:
    match = _ARN.match(text)
    if not match or match["partition"] not in PARTITIONS:
        return False
    return re.fullmatch(r"([0-9]{12})?", match["account"]) is not None


# -- no AWS: a fake session cache and probe remediators ---------------------------------------------------------

class Touched(BaseException):
    """The engine reached for something it must leave alone. A BaseException: the engine turns Exceptions of
    one finding into a `failed` result, and this must stop the test instead."""


class FakeSessions:
    """Stands in for AssumedSessions: no AWS. `target()` raises unless an allowed finding lives there."""

    def __init__(self, allowed: set[tuple[str, str, str]]) -> None:
        self.allowed = allowed
        self.asked: set[tuple[str, str, str]] = set()

    def target(self, account_id: str, region: str, partition: str = "aws", reads: object = None) -> object:
        if (account_id, region, partition) not in self.allowed:
            raise Touched(f"target({account_id}, {region}, {partition}) for findings that must not be touched")
        self.asked.add((account_id, region, partition))
        return Target(account_id, region, partition, _client_for=lambda service, api_region: None)  # never called


def probe(remediator: type[Remediator]) -> type[Remediator]:
    """The real remediator (rules, resource types, notify text) with assess/apply that touch nothing."""

    class Probe(remediator):  # type: ignore[misc, valid-type]
        def assess(self, target: Any, finding: Finding) -> Assessment:
            why = must_not_touch(finding)
            if why:
                raise Touched(f"assess() on {finding.finding_id}: {why}")
            return Assessment(compliant=False, changes=["probe: would change"])

        def prefetch(self, target: Any, findings: Any) -> None:  # a batched read (assess_many) reads nothing
            return None

        def apply(self, target: Any, finding: Finding, assessment: Assessment) -> None:
            raise Touched("apply() in stage plan")

    Probe.__name__ = Probe.__qualname__ = f"Probe{remediator.__name__}"
    return Probe


PROBES = {rule_id: CatalogEntry(entry.rule, probe(entry.remediator)) for rule_id, entry in CATALOG.items()}


def holds_huge_text(value: Any) -> bool:
    if isinstance(value, str):
        return len(value) >= HUGE
    if isinstance(value, dict):
        value = value.values()
    return isinstance(value, Iterable) and not isinstance(value, bytes) and any(map(holds_huge_text, value))


# -- the check, for one payload -------------------------------------------------------------------------------

def normalize_and_plan(payload: Any, parse: Callable[[Any], Iterable[Finding | FindingError]],
                       raw_resource: Callable[[Any], Any]) -> Counter[str]:
    """What happened to the payload, as counters (for the coverage assertions of the caller)."""
    seen: Counter[str] = Counter()
    if holds_huge_text(payload):
        seen["huge input"] += 1
    try:
        items = list(parse(payload))
    except FindingError as rejected:  # the payload as a whole
        assert str(rejected).strip()
        seen["payload rejected"] += 1
        return seen
    findings = []
    for item in items:
        if isinstance(item, FindingError):
            assert str(item).strip(), "a rejected finding without a reason"
            seen["finding rejected"] += 1
            continue
        assert isinstance(item, Finding)
        resource = raw_resource(item.raw)
        if isinstance(resource, str) and resource.strip().startswith("arn:"):
            assert arn_parses(resource.strip()), f"a Finding from an ARN that does not parse: {resource[:120]!r}"
        assert item.resource_arn is None or arn_parses(item.resource_arn)
        assert item.partition in PARTITIONS and re.fullmatch(r"[0-9]{12}", item.account_id), item.account_id
        findings.append(item)

    allowed = {(f.account_id, f.region, f.partition) for f in findings if not must_not_touch(f)}
    sessions = FakeSessions(allowed)
    results = list(Engine(CONFIG, sessions, stage="plan", catalog=PROBES, max_workers=1).stream(findings))  # type: ignore[arg-type]
    assert [r.finding_id for r in results] == [f.finding_id for f in findings]
    for finding, result in zip(findings, results, strict=True):
        assert result.outcome in OUTCOMES
        assert result.reason, result
        why = must_not_touch(finding)
        if why:
            assert result.outcome in ("skipped", "excluded"), (why, result)
            seen[f"left alone: {why}"] += 1
        seen[result.outcome] += 1
    # A target was asked for exactly where findings were assessed (once per finding, and once more per batch of a
    # rule whose assessment reads in batches): those planned, and those notified with what their read found.
    assessed = {(f.account_id, f.region, f.partition) for f, r in zip(findings, results, strict=True)
                if r.outcome == "planned"
                or (r.outcome == "notified" and CATALOG[f.rule_id].remediator.notify_assesses)}
    assert sessions.asked == assessed
    return seen


# -- strategies: well-formed findings of every kind, then broken in up to three places ---------------------

MISSING = object()
ACCOUNTS = ("111111111111", "333333333333", EXCLUDED_ACCOUNT, RULE_EXCLUDED_ACCOUNT)
PARTITION_REGIONS = (("aws", "us-east-1"), ("aws", "eu-west-1"), ("aws-cn", "cn-north-1"),
                     ("aws-us-gov", "us-gov-west-1"), ("aws-eusc", "eusc-de-east-1"))
NAMES = ("sg-0123456789abcdef0", "main", "alice", "my-bucket", *EXCLUDED_RESOURCES[:2])
RULE_TYPES = sorted((rule_id, t) for rule_id, entry in CATALOG.items() for t in entry.remediator.resource_types)
# Half the time a rule the configuration says something about (off, or excluded in an account).
rule_types = st.one_of(st.sampled_from(RULE_TYPES),
                       st.sampled_from([(r, t) for r, t in RULE_TYPES if r in (*OFF_RULES, *RULES_EXCLUDED_THERE)]))
BAD_ARNS = (
    "arn:aws-xx:ec2:us-east-1:222222222222:security-group/sg-0a1b2c3d4e5f60718",  # no such partition
    "arn:AWS:ec2:us-east-1:222222222222:security-group/sg-0a1b2c3d4e5f60718",
    "arn:aws:ec2:us-east-1:22222222222:security-group/sg-0a1b2c3d4e5f60718",  # 11-digit account
    "arn:aws:ec2:us-east-1:2222222222222:security-group/sg-0a1b2c3d4e5f60718",  # 13 digits
    "arn:aws:ec2:us-east-1:22222222222x:security-group/sg-0a1b2c3d4e5f60718",
    "arn:aws::us-east-1:222222222222:security-group/sg-0a1b2c3d4e5f60718",  # no service
    "arn:aws:ec2:us-east-1:222222222222:",  # no resource
    "arn:aws:ec2",
)

huge = st.text(min_size=1, max_size=3).map(lambda t: (t * HUGE)[:HUGE])  # 100 KB, unicode included
text = st.text(max_size=30)
junk = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), text, huge,
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
bad_accounts = st.one_of(  # too short, too long, not digits, digits that are not ASCII (a `\d` to Python's re)
    st.integers(0, 10**11 - 1).map(str), st.integers(10**12, 10**15).map(str),
    st.sampled_from(["", "12345678901a", "1111-1111-1111", "111111111111.0", "111111111111\n",
                     "\uff11" * 12, "\u0661" * 12]),
)
arns = st.builds(  # of any partition, valid or not
    lambda partition, service, region, account, resource: f"arn:{partition}:{service}:{region}:{account}:{resource}",
    st.sampled_from(["aws", "aws-cn", "aws-us-gov", "aws-xx", "aws-iso-x", "AWS", ""]),
    st.sampled_from(["ec2", "s3", "iam", ""]),
    st.sampled_from(["us-east-1", "cn-north-1", "us-gov-west-1", "", "x"]),
    st.one_of(st.sampled_from([*ACCOUNTS, ""]), bad_accounts),
    st.one_of(st.sampled_from(["security-group/sg-1", "excluded-bucket", "user/ops/alice", ""]), text),
)
tags = st.dictionaries(
    st.sampled_from([DEFAULT_EXCLUDE_TAG, "team", "Cspm-Remediation:Exclude", "équipe"]),
    st.sampled_from(["true", "false", "No", " OFF ", "0", "", "yes", "ja", "\u2713"]),
    max_size=2,
)
timestamps = st.one_of(
    st.sampled_from(["2026-11-22T23:41:17.904Z", "2026-11-22 23:41:17", "2026-11-22T23:41:17+05:30", "not a date", "",
                     "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]),  # the ends of the calendar
    st.datetimes().map(lambda d: d.isoformat()), st.integers(), st.floats(), text,
)
breakage = st.one_of(st.just(MISSING), junk, bad_accounts, arns, st.sampled_from(BAD_ARNS))


def breakages(paths: list[tuple[Any, ...]]) -> st.SearchStrategy:
    """Up to three (field path, what to put there) edits; MISSING removes the field."""
    return st.lists(st.tuples(st.sampled_from(paths), breakage), max_size=3)


def break_in_places(item: dict[str, Any], edits: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
    """`item` with the edits applied, where the path still leads somewhere after the earlier ones."""
    for path, value in edits:
        parent: Any = item
        for step in path[:-1]:
            parent = parent[step] if isinstance(parent, dict | list) and _has(parent, step) else None
        if isinstance(parent, dict | list) and _has(parent, path[-1]):
            if value is MISSING:
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
    return item


def _has(container: dict | list, key: Any) -> bool:
    return key in container if isinstance(container, dict) else isinstance(key, int) and 0 <= key < len(container)


# How sources name a resource: an ARN (of the finding's partition), a bare id or name, ASFF's account form.
RESOURCE_ID_FORMS = st.sampled_from(["arn:{partition}:ec2:{region}:{account}:thing/{name}",
                                     "arn:{partition}:s3:::{name}", "{name}", "AWS::::Account:{account}"])


# -- ASFF ------------------------------------------------------------------------------------------------------

ASFF_PATHS = [("Id",), ("AwsAccountId",), ("Region",), ("Compliance",), ("Compliance", "Status"),
              ("Compliance", "SecurityControlId"), ("Compliance", "RelatedRequirements"),
              ("Compliance", "AssociatedStandards"), ("GeneratorId",), ("ProductFields",),
              ("ProductFields", "ControlId"),
              ("Workflow",), ("RecordState",), ("Title",), ("LastObservedAt",),
              ("Severity",), ("Resources",), ("Resources", 0), ("Resources", 0, "Id"), ("Resources", 0, "Type"),
              ("Resources", 0, "Region"), ("Resources", 0, "Tags"), ("Resources", 0, "Details")]
ASFF_BREAKAGES = breakages(ASFF_PATHS)


@st.composite
def asff_findings(draw: st.DrawFn) -> dict[str, Any]:
    rule_id, resource_type = draw(rule_types)
    account = draw(st.sampled_from(ACCOUNTS))
    partition, region = draw(st.sampled_from(PARTITION_REGIONS))
    name = draw(st.sampled_from(NAMES))
    finding = {
        "SchemaVersion": "2018-10-08",
        "Id": f"arn:{partition}:securityhub:{region}:{account}:finding/{draw(st.integers(0, 20))}",
        "ProductArn": f"arn:{partition}:securityhub:{region}::product/aws/securityhub",
        "AwsAccountId": account,
        "Region": region,
        "GeneratorId": f"security-control/{rule_id}",
        "ProductFields": {"ControlId": rule_id},
        "Compliance": {"Status": draw(st.sampled_from(["FAILED", "FAILED", "FAILED", "PASSED"])),
                       "SecurityControlId": rule_id,
                       "RelatedRequirements": ["CIS AWS Foundations Benchmark v3.0.0/5.2"],
                       "AssociatedStandards": [{"StandardsId": "standards/cis-aws-foundations-benchmark/v/3.0.0"}]},
        "Workflow": {"Status": draw(st.sampled_from(["NEW", "NEW", "NOTIFIED", "RESOLVED"]))},
        "RecordState": draw(st.sampled_from(["ACTIVE", "ACTIVE", "ARCHIVED"])),
        "Severity": {"Label": "HIGH"},
        "Title": draw(text),
        "LastObservedAt": draw(timestamps),
        "Resources": [{"Type": resource_type, "Region": region, "Partition": partition, "Tags": draw(tags),
                       "Id": draw(RESOURCE_ID_FORMS).format(partition=partition, region=region, account=account,
                                                            name=name)}],
    }
    return break_in_places(finding, draw(ASFF_BREAKAGES))


asff_lists = st.lists(asff_findings(), max_size=4)
asff_payloads = st.one_of(
    asff_findings(),
    asff_lists,
    asff_lists.map(lambda findings: {"Findings": findings}),
    asff_lists.map(lambda findings: {"detail-type": "Security Hub Findings - Imported",
                                     "detail": {"findings": findings}}),
    junk.map(lambda value: {"detail": value}),
    junk.map(lambda value: {"Findings": value}),
    junk,
)


def asff_resource_id(raw: Any) -> Any:
    return raw["Resources"][0]["Id"]


# -- Netskope --------------------------------------------------------------------------------------------------

NETSKOPE_NAMES = sorted(NETSKOPE_RULES)
NETSKOPE_RULE_SG = next(name for name, rule in NETSKOPE_RULES.items() if rule == "EC2.13")
NETSKOPE_REGIONS = {"us-east-1": "US East (N. Virginia)", "eu-west-1": "Europe (Ireland)",
                    "cn-north-1": "China (Beijing)", "us-gov-west-1": "AWS GovCloud (US-West)",
                    "eusc-de-east-1": "AWS European Sovereign Cloud (Germany)"}
NETSKOPE_PATHS = [(key,) for key in ("rule_name", "account_id", "region_name", "resource_id", "resource_name",
                                     "resource_type", "status", "severity", "timestamp", "_id", "compliance_standards")]
NETSKOPE_BREAKAGES = breakages(NETSKOPE_PATHS)


@st.composite
def violations(draw: st.DrawFn) -> dict[str, Any]:
    account = draw(st.sampled_from(ACCOUNTS))
    partition, region = draw(st.sampled_from(PARTITION_REGIONS))
    name = draw(st.sampled_from(NAMES))
    violation = {
        "rule_name": draw(st.one_of(st.sampled_from(NETSKOPE_NAMES), text)),
        "account_id": draw(st.one_of(st.just(account), st.just(int(account)))),
        "region_name": draw(st.sampled_from([region, NETSKOPE_REGIONS[region], NETSKOPE_REGIONS[region].upper()])),
        "resource_id": draw(RESOURCE_ID_FORMS).format(partition=partition, region=region, account=account, name=name),
        "resource_name": name,
        "resource_type": draw(st.sampled_from(["SecurityGroup", "Bucket", "IAMUser", "Trail", "VPC", "Instance"])),
        "status": draw(st.sampled_from(["Failed", "Failed", "Passed", "Remediated", "Error"])),
        "severity": draw(st.sampled_from(["High", "Critical", "Low", "Severe"])),
        "timestamp": draw(timestamps),
        "compliance_standards": [{"standard": "CIS", "section": "5", "control": "2"}],
    }
    if draw(st.booleans()):
        violation["_id"] = f"v-{draw(st.integers(0, 20))}"
    return break_in_places(violation, draw(NETSKOPE_BREAKAGES))


netskope_lists = st.lists(violations(), max_size=4)
netskope_payloads = st.one_of(
    violations(),
    netskope_lists,
    netskope_lists.map(lambda items: {"status": "success", "msg": "", "data": items}),
    junk.map(lambda value: {"data": value}),
    st.just({"status": "error", "errorCode": "Authorization Error", "errors": ["Invalid token"]}),
    junk,
)


def netskope_resource_id(raw: Any) -> Any:
    value = raw.get("resource_id")
    return value if isinstance(value, str) and value.strip() else raw.get("resource_name")


# -- the properties --------------------------------------------------------------------------------------------

SETTINGS = settings(
    max_examples=EXAMPLES_PER_SOURCE, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example,
                           HealthCheck.filter_too_much],
)


def assert_every_path_was_taken(seen: Counter[str]) -> None:
    """The 5,000 payloads went through every branch the checks are about (else they prove little)."""
    for path in ("huge input", "payload rejected", "finding rejected", "planned", "excluded", "skipped",
                 "left alone: rule off",
                 "left alone: account excluded", "left alone: resource excluded",
                 "left alone: rule excluded in account"):
        assert seen[path] > 0, (path, seen)


def test_asff_bad_input_is_rejected_with_a_reason_and_never_touches_what_must_be_left_alone():
    seen: Counter[str] = Counter()

    @SETTINGS
    @given(asff_payloads)
    def check(payload: Any) -> None:
        seen.update(normalize_and_plan(payload, asff.parse_payload, asff_resource_id))

    check()
    assert_every_path_was_taken(seen)
    assert seen["left alone: excluded by tag"] > 0, seen


def test_netskope_bad_input_is_rejected_with_a_reason_and_never_touches_what_must_be_left_alone():
    seen: Counter[str] = Counter()

    @SETTINGS
    @given(netskope_payloads)
    def check(payload: Any) -> None:
        seen.update(normalize_and_plan(payload, netskope.parse_payload, netskope_resource_id))

    check()
    assert_every_path_was_taken(seen)


# -- ARNs that do not parse, one by one ----------------------------------------------------------------------

FIXTURES = Path(__file__).parent.parent / "fixtures"
ASFF = json.loads((FIXTURES / "asff_ec2_53.json").read_text())


@pytest.mark.parametrize("arn", BAD_ARNS)
def test_an_asff_resource_arn_that_does_not_parse_is_rejected_with_its_reason(arn):
    finding = copy.deepcopy(ASFF)
    finding["Resources"][0]["Id"] = arn
    (item,) = asff.parse_payload(finding)
    assert isinstance(item, FindingError) and "Resources[0].Id" in str(item)


@pytest.mark.parametrize("arn", BAD_ARNS)
def test_a_netskope_resource_arn_that_does_not_parse_is_rejected_with_its_reason(arn):
    violation = {"rule_name": NETSKOPE_RULE_SG, "account_id": "222222222222", "region_name": "us-east-1",
                 "resource_id": arn}
    (item,) = netskope.parse_payload([violation])
    assert isinstance(item, FindingError) and "resource_id" in str(item)


@pytest.mark.parametrize("arn, partition", [
    ("arn:aws-cn:ec2:cn-north-1:222222222222:security-group/sg-0a1b2c3d4e5f60718", "aws-cn"),
    ("arn:aws-us-gov:ec2:us-gov-west-1:222222222222:security-group/sg-0a1b2c3d4e5f60718", "aws-us-gov"),
    ("arn:aws-eusc:ec2:eusc-de-east-1:222222222222:security-group/sg-0a1b2c3d4e5f60718", "aws-eusc"),
])
def test_arns_of_the_other_partitions_are_findings_of_that_partition(arn, partition):
    finding = copy.deepcopy(ASFF)
    finding["Resources"][0] = {"Type": "AwsEc2SecurityGroup", "Id": arn}
    (item,) = asff.parse_payload(finding)
    assert isinstance(item, Finding)
    assert (item.partition, item.resource_id, item.account_id) == (partition, "sg-0a1b2c3d4e5f60718", "222222222222")


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_asff_timestamp_out_of_range_is_ignored_not_fatal(when):
    (item,) = asff.parse_payload({**ASFF, "LastObservedAt": when})
    assert isinstance(item, Finding) and item.last_observed is None


NOT_ASCII_DIGITS = "\uff12" * 12  # fullwidth 2s: a `\d` to Python's re, not an account id to AWS


@pytest.mark.parametrize("where", ["AwsAccountId", "ARN account", "ARN account + newline", "Netskope account_id"])
def test_an_account_of_non_ascii_digits_is_rejected(where):
    if where == "Netskope account_id":
        violation = {"rule_name": NETSKOPE_RULE_SG, "account_id": NOT_ASCII_DIGITS, "region_name": "us-east-1",
                     "resource_id": "sg-0a1b2c3d4e5f60718"}
        (item,) = netskope.parse_payload([violation])
    else:
        finding = copy.deepcopy(ASFF)
        if where == "AwsAccountId":
            finding["AwsAccountId"], finding["Resources"][0]["Id"] = NOT_ASCII_DIGITS, "sg-0a1b2c3d4e5f60718"
        else:
            account = NOT_ASCII_DIGITS if where == "ARN account" else "222222222222\n"
            finding["Resources"][0]["Id"] = f"arn:aws:ec2:eu-west-1:{account}:security-group/sg-0a1b2c3d4e5f60718"
        (item,) = asff.parse_payload(finding)
    assert isinstance(item, FindingError), f"accepted as account {item.account_id!r}"
