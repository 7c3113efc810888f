"""Standard-specific control ids → Security Hub security control ids (data).

Accounts that have not turned on consolidated control findings report the standard's own id (CIS 1.2.0 rule
"4.1", PCI "PCI.KMS.1"). This table maps them to the consolidated control id so they reach the same
remediators. Source: AWS Security Hub "Control ID and title changes" / standard mapping tables.
Ids that map to nothing are kept as they are and reported as "no remediator".
"""

from __future__ import annotations

# (standard prefix, standard control id) → security control id.
STANDARD_CONTROL_IDS: dict[tuple[str, str], str] = {
    # CIS AWS Foundations Benchmark v1.2.0
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.2"): "IAM.5",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.3"): "IAM.8",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.4"): "IAM.3",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.5"): "IAM.11",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.6"): "IAM.12",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.7"): "IAM.13",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.8"): "IAM.14",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.9"): "IAM.15",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.10"): "IAM.16",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.11"): "IAM.17",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.12"): "IAM.4",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.13"): "IAM.9",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.14"): "IAM.6",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.16"): "IAM.2",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.20"): "IAM.18",
    ("cis-aws-foundations-benchmark/v/1.2.0", "1.22"): "IAM.1",
    ("cis-aws-foundations-benchmark/v/1.2.0", "2.1"): "CloudTrail.1",
    ("cis-aws-foundations-benchmark/v/1.2.0", "2.2"): "CloudTrail.4",
    ("cis-aws-foundations-benchmark/v/1.2.0", "2.3"): "CloudTrail.6",
    ("cis-aws-foundations-benchmark/v/1.2.0", "2.4"): "CloudTrail.5",
    ("cis-aws-foundations-benchmark/v/1.2.0", "2.5"): "Config.1",
    ("cis-aws-foundations-benchmark/v/1.2.0", "2.6"): "CloudTrail.7",
    ("cis-aws-foundations-benchmark/v/1.2.0", "2.7"): "CloudTrail.2",
    ("cis-aws-foundations-benchmark/v/1.2.0", "2.8"): "KMS.4",
    ("cis-aws-foundations-benchmark/v/1.2.0", "2.9"): "EC2.6",
    ("cis-aws-foundations-benchmark/v/1.2.0", "4.1"): "EC2.13",
    ("cis-aws-foundations-benchmark/v/1.2.0", "4.2"): "EC2.14",
    ("cis-aws-foundations-benchmark/v/1.2.0", "4.3"): "EC2.2",
    # PCI DSS v3.2.1
    ("pci-dss/v/3.2.1", "PCI.KMS.1"): "KMS.4",
    ("pci-dss/v/3.2.1", "PCI.CloudTrail.3"): "CloudTrail.4",
    ("pci-dss/v/3.2.1", "PCI.CloudTrail.4"): "CloudTrail.5",
    ("pci-dss/v/3.2.1", "PCI.EC2.2"): "EC2.2",
    ("pci-dss/v/3.2.1", "PCI.EC2.6"): "EC2.6",
    ("pci-dss/v/3.2.1", "PCI.IAM.1"): "IAM.4",
    ("pci-dss/v/3.2.1", "PCI.IAM.2"): "IAM.2",
    ("pci-dss/v/3.2.1", "PCI.IAM.4"): "IAM.6",
    ("pci-dss/v/3.2.1", "PCI.IAM.5"): "IAM.9",
    ("pci-dss/v/3.2.1", "PCI.IAM.6"): "IAM.19",
    ("pci-dss/v/3.2.1", "PCI.IAM.7"): "IAM.8",
    ("pci-dss/v/3.2.1", "PCI.IAM.8"): "IAM.10",
    ("pci-dss/v/3.2.1", "PCI.S3.5"): "S3.5",
    ("pci-dss/v/3.2.1", "PCI.S3.6"): "S3.8",
}

# PCI ids are unique on their own; accept them without the standard prefix too.
_BY_BARE_ID: dict[str, str] = {
    control: target for (standard, control), target in STANDARD_CONTROL_IDS.items() if standard.startswith("pci")
}


def security_control_id(standard: str | None, control: str) -> str | None:
    """The consolidated control id for a standard-specific id, or None when the table has no entry."""
    if standard:
        mapped = STANDARD_CONTROL_IDS.get((standard, control))
        if mapped:
            return mapped
    return _BY_BARE_ID.get(control)
