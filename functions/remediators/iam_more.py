"""IAM.8 (FSBP): unused IAM user credentials removed after 90 days — IAM.22's remediator with its own threshold.

The work is the same as IAM.22's (functions/remediators/iam.py UnusedCredentials: deactivate access keys unused for
`max_unused_days`, optionally remove an unused console password); only the rule and its default differ: Security
Hub's IAM.8 uses 90 days. Offered with the boto3 executor only (the runbook's role and threshold are IAM.22's).
"""

from __future__ import annotations

from functions.remediators.base import Param, Rule
from functions.remediators.iam import UnusedCredentials


class UnusedCredentials90(UnusedCredentials):
    """IAM.8: deactivate access keys (and, with remove_unused_passwords, console passwords) unused for 90 days."""

    rules = (
        Rule(
            "IAM.8",
            "Unused IAM user credentials should be removed",
            disruptive=True,
            disruption="access",
            because="a rarely used key (yearly job) stops working",
        ),
    )
    runbook = None
    params_schema = {"max_unused_days": Param(90, int, minimum=1), "remove_unused_passwords": Param(False, bool)}
