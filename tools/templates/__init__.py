"""CloudFormation templates generated from the rule catalog: `python -m tools.templates`.

Writes cloudformation/admin.yaml (the delegated security account: Lambdas, queue, ledger, schedules, events,
alarms), cloudformation/target-account.yaml (every member account, via StackSets: the remediation role, the SSM
automation role, service roles) and cloudformation/organization-stackset.yaml (the StackSet that deploys the
target template to OUs). `--check` exits 1 when a committed template differs from what the catalog generates.

Everything rule-specific is derived from functions/engine/catalog.py: each rule gets exactly one toggle parameter
(off / notify / dry-run / enforce) in each template, and its declared IAM actions appear in the target-account
role only inside a statement guarded by that toggle's Condition. Nothing here lists a remediator's permissions
by hand; the only hand-written actions are the framework's own (the Lambdas' roles, the SSM executor's start /
poll, and the service roles AWS documents for a service a remediator hands a role to).

Resource "*" in the target role: remediation actions run against whichever resource a finding names in the
account the role lives in, and many of them (ec2:Describe*, ec2:*EbsEncryptionByDefault, iam:*AccountPassword
Policy, s3:*AccountPublicAccessBlock, logs:DescribeLogGroups, logs:*LogDelivery) support no resource-level
permissions at all. Actions that can grant more than the call itself (iam:PassRole) are always scoped to the
exact role and service.

Modules: cfn (intrinsics, conditions, pruning), iam (policy documents, packing into managed policies), rules
(toggles and their conditions), service_roles, one module per template (target, admin with storage and lambdas,
stackset), build (rendering, --check, the command line).
"""

from tools.templates.admin import admin_template
from tools.templates.build import ADMIN, STACKSET, TARGET, TEMPLATE_DIR, generate, main, render, stale_files
from tools.templates.stackset import stackset_template
from tools.templates.target import target_template

__all__ = [
    "ADMIN", "STACKSET", "TARGET", "TEMPLATE_DIR", "admin_template", "generate", "main", "render", "stackset_template",
    "stale_files", "target_template",
]
