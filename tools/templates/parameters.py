"""Constraints of the templates' name-like parameters: a value CloudFormation would only refuse deep into a
deployment (or a role that could never be assumed) is refused before anything is created, with a sentence that
says what is expected.

Each constraint is a pattern (anchored, as CloudFormation matches it against the whole value), the longest value
it admits, and its ConstraintDescription; `optional()` also admits the empty string (a parameter that is unset by
default).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from functions.remediators.base import ROLE_NAME as ROLE_NAME_RE
from tools.templates.cfn import Json


@dataclass(frozen=True)
class Constraint:
    pattern: str
    max_length: int
    description: str

    def optional(self) -> Constraint:
        return replace(self, pattern=f"^$|{self.pattern}", description=f"empty, or {self.description}")

    def spec(self) -> Json:
        """The parameter properties: Type String with this pattern, length and description."""
        return {"Type": "String", "AllowedPattern": self.pattern, "MaxLength": self.max_length,
                "ConstraintDescription": f"must be {self.description}"}


# IAM: a role name is 1-64 of [\w+=,.@-]; sts:ExternalId 2-1,224 of [\w+=,./@:-] (AssumeRole API reference).
ROLE_NAME = Constraint(f"^{ROLE_NAME_RE}$", 64, "an IAM role name: 1 to 64 letters, digits and + = , . @ _ -")
EXTERNAL_ID = Constraint(r"^[\w+=,.@:/-]{2,1224}$", 1224,
                         "an sts:ExternalId: 2 to 1,224 letters, digits and + = , . @ : / _ -")
ACCOUNT_ID = Constraint(r"^\d{12}$", 12, "a 12-digit AWS account id")
ORGANIZATION_ID = Constraint(r"^o-[a-z0-9]{10,32}$", 34,
                             "an AWS Organizations id: o- then 10 to 32 lowercase letters or digits")
_REGION = r"[a-z]{2,4}(-[a-z]+)+-\d+"  # us-east-1, eusc-de-east-1 (the European Sovereign Cloud)
REGION = Constraint(f"^{_REGION}$", 32, "a Region code such as us-east-1")
REGIONS = Constraint(f"^{_REGION}(,{_REGION})*$", 1024, "Region codes separated by commas, such as us-east-1,eu-west-1")
# S3: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit; a key is at
# most 1,024 bytes (no whitespace here: the functions split locations on it).
BUCKET = Constraint(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$", 63,
                    "an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens")
S3_KEY = Constraint(r"^\S{1,1024}$", 1024, "an S3 object key: 1 to 1,024 characters, no spaces")
TEMPLATE_URL = Constraint(r"^https://\S{1,1016}$", 1024, "the https:// URL of an uploaded template")
EMAIL = Constraint(r"^[^@\s]+@[^@\s]+$", 254, "an e-mail address")
# EventBridge Scheduler: rate(value unit) or cron(fields); at() is a one-time schedule, no use for a pull.
SCHEDULE = Constraint(r"^(rate\(\d+ (minute|minutes|hour|hours|day|days)\)|cron\([^()]{9,240}\))$", 256,
                      "rate(N unit) or cron(...), as EventBridge Scheduler takes them")
# A Netskope tenant: https://host[:port][/path] or a bare host; http:// only where the connector allows it
# (127.0.0.1 and localhost test servers, connectors/netskope.py).
NETSKOPE_URL = Constraint(r"^((https?)://)?[A-Za-z0-9.\-]{1,253}(:\d{1,5})?(/\S*)?$", 2048,
                          "a Netskope tenant URL (https://tenant.goskope.com) or its host name")
STACK_SET_NAME = Constraint(r"^[a-zA-Z][a-zA-Z0-9-]{0,99}$", 100,
                            "a StackSet name: a letter, then up to 99 letters, digits and hyphens")
ROLLBACK_OPERATOR = Constraint(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]{1,512}$", 2048,
                               "the ARN of an IAM role or user").optional()
