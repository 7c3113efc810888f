"""Standard-specific control ids → Security Hub security control ids (data).

Accounts that have not turned on consolidated control findings report the standard's own id: CIS v1.2.0
`ProductFields.RuleId` "4.1", CIS v1.4.0 / v3.0.0 / v5.0.0 `ProductFields.ControlId` "2.1.1", PCI DSS "PCI.KMS.1".
These tables map them to the security control id, so they reach the same remediators. Ids that map to
nothing are kept as they are by the caller and reported as "no remediator".

Sources (AWS Security Hub CSPM user guide; facts only):
- https://docs.aws.amazon.com/securityhub/latest/userguide/cis-aws-foundations-benchmark.md — the controls
  of CIS v5.0.0, v3.0.0, v1.4.0 and v1.2.0 and the "Mapping of controls to CIS requirements in each version"
  table.
- https://docs.aws.amazon.com/securityhub/latest/userguide/asff-changes-consolidation.md — "Generator IDs
  before and after enabling consolidated control findings" and "How consolidation impacts control IDs and
  titles" (CIS v1.2.0, CIS v1.4.0, PCI DSS v3.2.1, FSBP).
- https://docs.aws.amazon.com/securityhub/latest/userguide/s3-controls.md — S3.22 / S3.23 "Related
  requirements" (CIS v5.0.0 / v3.0.0 3.8 and 3.9; the comparison table has no rows for them).

Where the pages disagree, the choice is noted next to the entry. Split requirements: the comparison table
gives one CIS number to two controls (v1.4.0 2.1.5, v3.0.0 / v5.0.0 2.1.4: S3.1 and S3.8); the control ids
Security Hub reports are "2.1.5.1" / "2.1.5.2" (v1.4.0, from the generator-id table) and "2.1.4.1" / "2.1.4.2"
(v3.0.0, as used by AWS's Automated Security Response solution, CIS300 playbook; v5.0.0 assumed to follow
v3.0.0). Numbers shared by two controls whose reported ids are not published are in AMBIGUOUS, not mapped.
"""

from __future__ import annotations

CIS_V120 = "cis-aws-foundations-benchmark/v/1.2.0"
CIS_V140 = "cis-aws-foundations-benchmark/v/1.4.0"
CIS_V300 = "cis-aws-foundations-benchmark/v/3.0.0"
CIS_V500 = "cis-aws-foundations-benchmark/v/5.0.0"
PCI_V321 = "pci-dss/v/3.2.1"
FSBP_V100 = "aws-foundational-security-best-practices/v/1.0.0"

# CIS v1.2.0: `ProductFields.RuleId` → security control id.
CIS_V120_CONTROLS: dict[str, str] = {
    # 1.1: the generator-id and id/title tables give CloudWatch.1 (the only one in the v1.2.0 control list);
    # the comparison table gives IAM.20 for 1.1 and CloudWatch.1 for 3.3.
    "1.1": "CloudWatch.1",
    "1.2": "IAM.5",
    "1.3": "IAM.8",
    "1.4": "IAM.3",
    "1.5": "IAM.11",
    "1.6": "IAM.12",
    "1.7": "IAM.13",
    "1.8": "IAM.14",
    "1.9": "IAM.15",
    "1.10": "IAM.16",
    "1.11": "IAM.17",
    "1.12": "IAM.4",
    "1.13": "IAM.9",
    "1.14": "IAM.6",
    "1.16": "IAM.2",
    "1.18": "Account.1",  # comparison table only; Account.1 is not in the v1.2.0 control list
    "1.20": "IAM.18",  # the comparison table prints "1.2" (it is 1.20 in the generator-id and id/title tables)
    "1.22": "IAM.1",
    "2.1": "CloudTrail.1",
    "2.2": "CloudTrail.4",
    "2.3": "CloudTrail.6",
    "2.4": "CloudTrail.5",
    "2.5": "Config.1",
    "2.6": "CloudTrail.7",
    "2.7": "CloudTrail.2",
    "2.8": "KMS.4",
    "2.9": "EC2.6",
    "3.1": "CloudWatch.2",
    "3.2": "CloudWatch.3",
    "3.3": "CloudWatch.1",
    "3.4": "CloudWatch.4",
    "3.5": "CloudWatch.5",
    "3.6": "CloudWatch.6",
    "3.7": "CloudWatch.7",
    "3.8": "CloudWatch.8",
    "3.9": "CloudWatch.9",
    "3.10": "CloudWatch.10",
    "3.11": "CloudWatch.11",
    "3.12": "CloudWatch.12",
    "3.13": "CloudWatch.13",
    "3.14": "CloudWatch.14",
    "4.1": "EC2.13",
    "4.2": "EC2.14",
    "4.3": "EC2.2",
}

# CIS v1.4.0: `ProductFields.ControlId` → security control id.
CIS_V140_CONTROLS: dict[str, str] = {
    "1.2": "Account.1",  # comparison table only; Account.1 is not in the v1.4.0 control list
    "1.4": "IAM.4",
    "1.5": "IAM.9",
    "1.6": "IAM.6",
    "1.7": "CloudWatch.1",  # generator-id and id/title tables (the comparison table lists only 4.3)
    "1.8": "IAM.15",
    "1.9": "IAM.16",
    "1.10": "IAM.5",
    "1.12": "IAM.22",
    "1.14": "IAM.3",
    "1.16": "IAM.1",
    "1.17": "IAM.18",
    "2.1.2": "S3.5",
    "2.1.3": "S3.20",
    "2.1.5.1": "S3.1",
    "2.1.5.2": "S3.8",
    "2.2.1": "EC2.7",
    "2.3.1": "RDS.3",
    "3.1": "CloudTrail.1",
    "3.2": "CloudTrail.4",
    "3.3": "CloudTrail.6",
    "3.4": "CloudTrail.5",
    "3.5": "Config.1",
    # 3.6: the comparison and id/title tables and the v1.4.0 control list give CloudTrail.7; the
    # generator-id table gives S3.9 (not in the v1.4.0 control list).
    "3.6": "CloudTrail.7",
    "3.7": "CloudTrail.2",
    "3.8": "KMS.4",
    "3.9": "EC2.6",
    "4.3": "CloudWatch.1",
    "4.4": "CloudWatch.4",
    "4.5": "CloudWatch.5",
    "4.6": "CloudWatch.6",
    "4.7": "CloudWatch.7",
    "4.8": "CloudWatch.8",
    "4.9": "CloudWatch.9",
    "4.10": "CloudWatch.10",
    "4.11": "CloudWatch.11",
    "4.12": "CloudWatch.12",
    "4.13": "CloudWatch.13",
    "4.14": "CloudWatch.14",
    "5.1": "EC2.21",
    "5.3": "EC2.2",
}

# CIS v3.0.0: `ProductFields.ControlId` → security control id.
CIS_V300_CONTROLS: dict[str, str] = {
    "1.2": "Account.1",
    "1.4": "IAM.4",
    "1.5": "IAM.9",
    "1.6": "IAM.6",
    "1.8": "IAM.15",
    "1.9": "IAM.16",
    "1.10": "IAM.5",
    "1.12": "IAM.22",
    "1.14": "IAM.3",
    "1.15": "IAM.2",
    "1.17": "IAM.18",
    "1.19": "IAM.26",
    "1.20": "IAM.28",
    "1.22": "IAM.27",
    "2.1.1": "S3.5",
    "2.1.2": "S3.20",
    "2.1.4.1": "S3.1",  # requirement 2.1.4
    "2.1.4.2": "S3.8",  # requirement 2.1.4
    "2.2.1": "EC2.7",
    "2.3.1": "RDS.3",
    "2.3.2": "RDS.13",
    "2.3.3": "RDS.2",
    "2.4.1": "EFS.1",
    "3.1": "CloudTrail.1",
    "3.2": "CloudTrail.4",
    "3.3": "Config.1",
    "3.4": "CloudTrail.7",
    "3.5": "CloudTrail.2",
    "3.6": "KMS.4",
    "3.7": "EC2.6",
    "3.8": "S3.22",
    "3.9": "S3.23",
    "5.1": "EC2.21",
    "5.2": "EC2.53",
    "5.3": "EC2.54",
    "5.4": "EC2.2",
    "5.6": "EC2.8",
}

# CIS v5.0.0: `ProductFields.ControlId` → security control id. 2.2.4 and 2.3.1 are in AMBIGUOUS.
CIS_V500_CONTROLS: dict[str, str] = {
    "1.2": "Account.1",
    "1.3": "IAM.4",
    "1.4": "IAM.9",
    "1.5": "IAM.6",
    "1.7": "IAM.15",
    "1.8": "IAM.16",
    "1.9": "IAM.5",
    "1.11": "IAM.22",
    "1.13": "IAM.3",
    "1.14": "IAM.2",
    "1.16": "IAM.18",
    "1.18": "IAM.26",
    "1.19": "IAM.28",
    "1.21": "IAM.27",
    "2.1.1": "S3.5",
    "2.1.2": "S3.20",
    "2.1.4.1": "S3.1",  # requirement 2.1.4
    "2.1.4.2": "S3.8",  # requirement 2.1.4
    "2.2.1": "RDS.3",
    "2.2.2": "RDS.13",
    "2.2.3": "RDS.2",
    "3.1": "CloudTrail.1",
    "3.2": "CloudTrail.4",
    "3.3": "Config.1",
    "3.4": "CloudTrail.7",
    "3.5": "CloudTrail.2",
    "3.6": "KMS.4",
    "3.7": "EC2.6",
    "3.8": "S3.22",
    "3.9": "S3.23",
    "5.1.1": "EC2.7",
    "5.2": "EC2.21",
    "5.3": "EC2.53",
    "5.4": "EC2.54",
    "5.5": "EC2.2",
    "5.7": "EC2.8",
}

# PCI DSS v3.2.1: `ProductFields.ControlId` → security control id.
PCI_V321_CONTROLS: dict[str, str] = {
    "PCI.AutoScaling.1": "AutoScaling.1",
    "PCI.CloudTrail.1": "CloudTrail.2",
    "PCI.CloudTrail.2": "CloudTrail.3",
    "PCI.CloudTrail.3": "CloudTrail.4",
    "PCI.CloudTrail.4": "CloudTrail.5",
    "PCI.CodeBuild.1": "CodeBuild.1",
    "PCI.CodeBuild.2": "CodeBuild.2",
    "PCI.Config.1": "Config.1",
    "PCI.CW.1": "CloudWatch.1",
    "PCI.DMS.1": "DMS.1",
    "PCI.EC2.1": "EC2.1",
    "PCI.EC2.2": "EC2.2",
    "PCI.EC2.4": "EC2.12",
    "PCI.EC2.5": "EC2.13",
    "PCI.EC2.6": "EC2.6",
    "PCI.ELBv2.1": "ELB.1",
    "PCI.ES.1": "ES.2",
    "PCI.ES.2": "ES.1",
    "PCI.GuardDuty.1": "GuardDuty.1",
    "PCI.IAM.1": "IAM.4",
    "PCI.IAM.2": "IAM.2",
    "PCI.IAM.3": "IAM.1",
    "PCI.IAM.4": "IAM.6",
    "PCI.IAM.5": "IAM.9",
    "PCI.IAM.6": "IAM.19",
    "PCI.IAM.7": "IAM.8",
    "PCI.IAM.8": "IAM.10",
    "PCI.KMS.1": "KMS.4",
    "PCI.Lambda.1": "Lambda.1",
    "PCI.Lambda.2": "Lambda.3",
    "PCI.Opensearch.1": "Opensearch.2",
    "PCI.Opensearch.2": "Opensearch.1",
    "PCI.RDS.1": "RDS.1",
    "PCI.RDS.2": "RDS.2",
    "PCI.Redshift.1": "Redshift.1",
    "PCI.S3.1": "S3.3",
    "PCI.S3.2": "S3.2",
    "PCI.S3.3": "S3.7",
    "PCI.S3.5": "S3.5",
    "PCI.S3.6": "S3.1",
    "PCI.SageMaker.1": "SageMaker.1",
    "PCI.SSM.1": "SSM.2",
    "PCI.SSM.2": "SSM.3",
    "PCI.SSM.3": "SSM.1",
}

# FSBP ids are security control ids except this one (generator-id table).
FSBP_V100_CONTROLS: dict[str, str] = {
    "ELBv2.1": "ELB.1",
}

STANDARD_TABLES: dict[str, dict[str, str]] = {
    CIS_V120: CIS_V120_CONTROLS,
    CIS_V140: CIS_V140_CONTROLS,
    CIS_V300: CIS_V300_CONTROLS,
    CIS_V500: CIS_V500_CONTROLS,
    PCI_V321: PCI_V321_CONTROLS,
    FSBP_V100: FSBP_V100_CONTROLS,
}

# (standard prefix, standard control id) → security control id.
STANDARD_CONTROL_IDS: dict[tuple[str, str], str] = {
    (standard, control): target for standard, table in STANDARD_TABLES.items() for control, target in table.items()
}

# CIS numbers the comparison table gives to two controls where the id Security Hub reports for each is not
# published. Deliberately unmapped: guessing would send a finding to the wrong remediator.
AMBIGUOUS: dict[tuple[str, str], tuple[str, ...]] = {
    (CIS_V140, "2.1.5"): ("S3.1", "S3.8"),  # reported as 2.1.5.1 / 2.1.5.2
    (CIS_V300, "2.1.4"): ("S3.1", "S3.8"),  # reported as 2.1.4.1 / 2.1.4.2
    (CIS_V500, "2.1.4"): ("S3.1", "S3.8"),  # reported as 2.1.4.1 / 2.1.4.2
    (CIS_V500, "2.2.4"): ("RDS.5", "RDS.15"),
    (CIS_V500, "2.3.1"): ("EFS.1", "EFS.8"),
}

# PCI ids are unique on their own; accept them without the standard prefix too.
_BY_BARE_ID: dict[str, str] = dict(PCI_V321_CONTROLS)

_STANDARD_MARKERS = ("standards/", "ruleset/", "subscription/")


def _standard_key(standard: str) -> str:
    """The bare standard ("cis-aws-foundations-benchmark/v/1.2.0") from it, a "standards/…" id or an ARN."""
    key = standard.strip()
    for marker in _STANDARD_MARKERS:
        if marker in key:
            key = key.rsplit(marker, 1)[1]
    return key.strip("/")


def security_control_id(standard: str | None, control: str) -> str | None:
    """The consolidated control id for a standard-specific id, or None when the table has no entry."""
    control = control.strip()
    if standard:
        mapped = STANDARD_CONTROL_IDS.get((_standard_key(standard), control))
        if mapped:
            return mapped
    return _BY_BARE_ID.get(control)
