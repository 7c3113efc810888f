"""Standard-specific control ids → security control ids, and the catalog's CIS numbers against that data."""

import re

import pytest

from connectors.asff import control_ids
from connectors.standards import (
    AMBIGUOUS,
    CIS_V120,
    CIS_V140,
    CIS_V300,
    CIS_V500,
    FSBP_V100,
    PCI_V321,
    STANDARD_CONTROL_IDS,
    STANDARD_TABLES,
    security_control_id,
)
from functions.engine.catalog import CATALOG

# /work/shared/CATALOG.md, sections A and B: (CIS v3.0.0 number, rule_id).
CATALOG_MD_CIS_V300 = [
    # A. remediated automatically
    ("1.8", "IAM.15"), ("1.9", "IAM.16"), ("1.12", "IAM.22"), ("1.14", "IAM.3"), ("1.15", "IAM.2"),
    ("1.17", "IAM.18"), ("1.19", "IAM.26"), ("1.20", "IAM.28"), ("1.22", "IAM.27"), ("2.1.1", "S3.5"),
    ("2.1.4.1", "S3.1"), ("2.1.4.2", "S3.8"), ("2.2.1", "EC2.7"), ("2.3.1", "RDS.3"), ("2.3.2", "RDS.13"),
    ("2.3.3", "RDS.2"), ("2.4.1", "EFS.1"), ("3.1", "CloudTrail.1"), ("3.2", "CloudTrail.4"),
    ("3.4", "CloudTrail.7"), ("3.5", "CloudTrail.2"), ("3.6", "KMS.4"), ("3.7", "EC2.6"), ("3.8", "S3.22"),
    ("3.9", "S3.23"), ("5.1", "EC2.21"), ("5.2", "EC2.53"), ("5.3", "EC2.54"), ("5.4", "EC2.2"), ("5.6", "EC2.8"),
    # B. detected, human action required
    ("1.4", "IAM.4"), ("1.5", "IAM.9"), ("1.6", "IAM.6"), ("1.10", "IAM.5"), ("2.1.2", "S3.20"), ("3.3", "Config.1"),
]
# Sections C (Netskope rule names → rule_id) and D (beyond the seeds; "IAM.10-IAM.17" expanded).
CATALOG_MD_OTHER_RULES = [
    "EC2.6", "EC2.13", "EC2.14", "RDS.1", "Redshift.1", "CloudTrail.4", "netskope:nacl-allow-all-ingress", "S3.8",
    "IAM.3",
    "EC2.1", "SQS.3", "Lambda.1", "EC2.19",
    "IAM.10", "IAM.11", "IAM.12", "IAM.13", "IAM.14", "IAM.15", "IAM.16", "IAM.17",
]
CATALOG_MD_RULES = sorted({rule for _, rule in CATALOG_MD_CIS_V300} | set(CATALOG_MD_OTHER_RULES))

SECURITY_CONTROL_ID = re.compile(r"^[A-Za-z][A-Za-z0-9]*\.\d+$")


@pytest.mark.parametrize(
    ("standard", "control", "expected"),
    [
        # The examples from the issue.
        (CIS_V120, "4.1", "EC2.13"),
        (CIS_V120, "1.4", "IAM.3"),
        (CIS_V120, "2.8", "KMS.4"),
        (PCI_V321, "PCI.KMS.1", "KMS.4"),
        # A sample from each version.
        (CIS_V120, "1.20", "IAM.18"),
        (CIS_V120, "3.3", "CloudWatch.1"),
        (CIS_V140, "1.14", "IAM.3"),
        (CIS_V140, "2.1.5.1", "S3.1"),
        (CIS_V140, "2.1.5.2", "S3.8"),
        (CIS_V140, "3.6", "CloudTrail.7"),
        (CIS_V140, "5.1", "EC2.21"),
        (CIS_V300, "1.14", "IAM.3"),
        (CIS_V300, "2.1.4.1", "S3.1"),
        (CIS_V300, "2.1.4.2", "S3.8"),
        (CIS_V300, "5.2", "EC2.53"),
        (CIS_V500, "1.13", "IAM.3"),
        (CIS_V500, "5.1.1", "EC2.7"),
        (CIS_V500, "5.3", "EC2.53"),
        (CIS_V500, "5.5", "EC2.2"),
        (PCI_V321, "PCI.S3.6", "S3.1"),
        (PCI_V321, "PCI.EC2.5", "EC2.13"),
        (PCI_V321, "PCI.CW.1", "CloudWatch.1"),
        (FSBP_V100, "ELBv2.1", "ELB.1"),
    ],
)
def test_mapped_ids(standard, control, expected):
    assert security_control_id(standard, control) == expected


@pytest.mark.parametrize(
    ("standard", "control"),
    [
        (CIS_V140, "9.9"),
        (CIS_V300, "1.1"),  # CIS 1.1 (maintain contact details) is a manual check
        (CIS_V120, "PCI.KMS.0"),
        (FSBP_V100, "EC2.2"),  # already a security control id: the caller keeps it
        (None, "4.1"),  # a CIS number means nothing without its version
        ("cis-aws-foundations-benchmark/v/9.9.9", "4.1"),
        *AMBIGUOUS,
    ],
)
def test_unmapped_ids_give_none(standard, control):
    assert security_control_id(standard, control) is None


def test_pci_ids_are_accepted_without_the_standard():
    assert security_control_id(None, "PCI.KMS.1") == "KMS.4"
    assert security_control_id("", "PCI.IAM.6") == "IAM.19"
    assert security_control_id("some-other-standard/v/1.0.0", "PCI.S3.6") == "S3.1"


@pytest.mark.parametrize(
    "standard",
    [
        "cis-aws-foundations-benchmark/v/1.2.0",
        "ruleset/cis-aws-foundations-benchmark/v/1.2.0",
        "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0",
        "arn:aws:securityhub:us-east-2:123456789012:subscription/cis-aws-foundations-benchmark/v/1.2.0",
    ],
)
def test_standard_given_in_any_of_its_forms(standard):
    assert security_control_id(standard, "4.1") == "EC2.13"
    assert security_control_id(standard, " 2.9 ") == "EC2.6"


def test_v3_and_v5_standards_arn_forms():
    assert security_control_id("standards/cis-aws-foundations-benchmark/v/3.0.0", "5.4") == "EC2.2"
    v500_arn = "arn:aws:securityhub:::standards/cis-aws-foundations-benchmark/v/5.0.0"
    assert security_control_id(v500_arn, "5.7") == "EC2.8"


def test_entry_counts_per_standard():
    # Every control AWS lists for the version, minus the numbers in AMBIGUOUS (see connectors/standards.py).
    counts = {standard: len(table) for standard, table in STANDARD_TABLES.items()}
    assert counts == {CIS_V120: 44, CIS_V140: 41, CIS_V300: 37, CIS_V500: 36, PCI_V321: 44, FSBP_V100: 1}
    assert len(STANDARD_CONTROL_IDS) == sum(counts.values())


def test_every_target_is_a_security_control_id():
    bad = {key: target for key, target in STANDARD_CONTROL_IDS.items() if not SECURITY_CONTROL_ID.match(target)}
    assert not bad


def test_ambiguous_numbers_stay_out_of_the_table():
    assert not set(AMBIGUOUS) & set(STANDARD_CONTROL_IDS)
    for (standard, _), candidates in AMBIGUOUS.items():
        assert len(candidates) > 1
        assert standard in STANDARD_TABLES


def test_each_cis_version_lists_the_controls_aws_lists():
    """Security control ids per version, from the page's "Controls that apply to …" lists (v5.0.0 minus the
    four controls whose two-way requirement numbers are in AMBIGUOUS; v1.2.0 / v1.4.0 plus Account.1, which
    the comparison table maps)."""
    v300 = {
        "Account.1", "CloudTrail.1", "CloudTrail.2", "CloudTrail.4", "CloudTrail.7", "Config.1", "EC2.2", "EC2.6",
        "EC2.7", "EC2.8", "EC2.21", "EC2.53", "EC2.54", "EFS.1", "IAM.2", "IAM.3", "IAM.4", "IAM.5", "IAM.6",
        "IAM.9", "IAM.15", "IAM.16", "IAM.18", "IAM.22", "IAM.26", "IAM.27", "IAM.28", "KMS.4", "RDS.2", "RDS.3",
        "RDS.13", "S3.1", "S3.5", "S3.8", "S3.20", "S3.22", "S3.23",
    }
    v140 = {
        "Account.1", "CloudTrail.1", "CloudTrail.2", "CloudTrail.4", "CloudTrail.5", "CloudTrail.6", "CloudTrail.7",
        *(f"CloudWatch.{n}" for n in (1, *range(4, 15))), "Config.1", "EC2.2", "EC2.6", "EC2.7", "EC2.21", "IAM.1",
        "IAM.3", "IAM.4", "IAM.5", "IAM.6", "IAM.9", "IAM.15", "IAM.16", "IAM.18", "IAM.22", "KMS.4", "RDS.3",
        "S3.1", "S3.5", "S3.8", "S3.20",
    }
    v120 = {
        "Account.1", "CloudTrail.1", "CloudTrail.2", "CloudTrail.4", "CloudTrail.5", "CloudTrail.6", "CloudTrail.7",
        *(f"CloudWatch.{n}" for n in range(1, 15)), "Config.1", "EC2.2", "EC2.6", "EC2.13", "EC2.14", "IAM.1",
        "IAM.2", "IAM.3", "IAM.4", "IAM.5", "IAM.6", "IAM.8", "IAM.9", *(f"IAM.{n}" for n in range(11, 19)), "KMS.4",
    }
    assert set(STANDARD_TABLES[CIS_V300].values()) == v300
    assert set(STANDARD_TABLES[CIS_V500].values()) == v300 - {"EFS.1"}
    assert set(STANDARD_TABLES[CIS_V140].values()) == v140
    assert set(STANDARD_TABLES[CIS_V120].values()) == v120


@pytest.mark.parametrize(
    ("asff", "expected"),
    [
        # AWS's sample findings (consolidated control findings off), SecurityControlId left out.
        ({"GeneratorId": "cis-aws-foundations-benchmark/v/5.0.0/5.1.1", "ProductFields": {"ControlId": "5.1.1"}},
         "EC2.7"),
        ({"GeneratorId": "cis-aws-foundations-benchmark/v/3.0.0/2.2.1", "ProductFields": {"ControlId": "2.2.1"}},
         "EC2.7"),
        ({"GeneratorId": "cis-aws-foundations-benchmark/v/1.4.0/3.7", "ProductFields": {"ControlId": "3.7"}},
         "CloudTrail.2"),
        ({"GeneratorId": "arn:aws:securityhub:::ruleset/cis-aws-foundations-benchmark/v/1.2.0/rule/2.7",
          "ProductFields": {"RuleId": "2.7"}}, "CloudTrail.2"),
        ({"GeneratorId": "cis-aws-foundations-benchmark/v/3.0.0/2.1.4.2", "ProductFields": {"ControlId": "2.1.4.2"}},
         "S3.8"),
        ({"GeneratorId": "pci-dss/v/3.2.1/PCI.S3.6", "ProductFields": {"ControlId": "PCI.S3.6"}}, "S3.1"),
        ({"GeneratorId": "aws-foundational-security-best-practices/v/1.0.0/ELBv2.1",
          "ProductFields": {"ControlId": "ELBv2.1"}}, "ELB.1"),
        # Only the generator id.
        ({"GeneratorId": "cis-aws-foundations-benchmark/v/5.0.0/1.13"}, "IAM.3"),
    ],
)
def test_asff_control_ids_use_the_tables(asff, expected):
    rule_id, source_rule = control_ids(asff)
    assert rule_id == expected
    assert source_rule == asff["GeneratorId"]


def test_catalog_cis_numbers_map_back_to_their_rule():
    """Every CIS v3.0.0 number a catalog rule declares maps to that rule in AWS's v3.0.0 table; a rule without a
    Security Hub control (a `<source>:` id, CIS 1.13) declares only a number AWS maps to nothing."""
    table = STANDARD_TABLES[CIS_V300]
    mismatches = [
        f"{rule_id} declares CIS {number}: AWS maps it to {table.get(number, 'nothing')}"
        for rule_id, entry in CATALOG.items()
        for number in entry.rule.cis
        if table.get(number) != (None if ":" in rule_id else rule_id)
    ]
    assert not mismatches, mismatches


def test_catalog_rules_in_cis_v3_declare_their_number():
    """A rule the catalog has that AWS maps from a CIS v3.0.0 number declares that number."""
    missing = [
        f"{rule_id} has no cis {number!r}"
        for number, rule_id in STANDARD_TABLES[CIS_V300].items()
        if rule_id in CATALOG and number not in CATALOG[rule_id].rule.cis
    ]
    assert not missing, missing


def test_catalog_md_cis_numbers_agree_with_aws():
    table = STANDARD_TABLES[CIS_V300]
    wrong = [f"CIS {number} → {rule_id} (AWS: {table.get(number)})" for number, rule_id in CATALOG_MD_CIS_V300
             if table.get(number) != rule_id]
    assert not wrong, wrong


def test_catalog_md_sections_a_to_d_are_in_the_catalog():
    assert len(CATALOG_MD_CIS_V300) == 36  # 30 in section A, 6 in section B
    missing = [rule_id for rule_id in CATALOG_MD_RULES if rule_id not in CATALOG]
    assert not missing, f"CATALOG.md rules missing from functions.engine.catalog.CATALOG: {missing}"
