"""Names and sizes shared by the admin and target templates."""

from __future__ import annotations

LAMBDA_RUNTIME = "python3.13"
LAMBDA_ARCHITECTURE = "arm64"
CODE_ZIP_NAME = "cspm-remediation.zip"
DEFAULT_REMEDIATION_ROLE_NAME = "CSPMRemediationRole"
DEFAULT_REMEDIATE_FUNCTION_ROLE_NAME = "CSPMRemediationRemediateFunction"
DEFAULT_SCHEDULE = "rate(1 hour)"
SOURCES = ("securityhub", "securityhub-v2", "netskope", "prowler", "both")  # both: securityhub and netskope
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)
