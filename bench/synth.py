"""The synthetic organization's shape: how N findings are spread over accounts, regions and the catalog's rules.

Pure and deterministic: the same (N, accounts, regions) always gives the same plan, so runs compare.

Every catalog rule gets findings:
* account-level rules, one finding per account (IAM.7, IAM.10-17 password policy, S3.1) or per account and region
  (EC2.7). Their number depends on the org, not on N;
* resource rules share the rest by weight: security groups open on 22/3389 over IPv4 and IPv6 (one group is
  four findings: EC2.53, EC2.54, EC2.13, EC2.14), buckets (S3.8), VPCs (EC2.6), KMS keys (KMS.4), IAM users with
  a 120-day-old key (IAM.3), trails (CloudTrail.4, at most 5 per region as in AWS; the overflow goes to buckets).

Rules Netskope reports (EC2.13, EC2.14, EC2.6, S3.8, IAM.3, CloudTrail.4) come from Netskope for every third
resource and from Security Hub otherwise; the rest always come from Security Hub.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

PASSWORD_RULES = ("IAM.7", "IAM.10", "IAM.11", "IAM.12", "IAM.13", "IAM.14", "IAM.15", "IAM.16", "IAM.17")
ACCOUNT_RULES = (*PASSWORD_RULES, "S3.1")  # one finding per account, in the home region
REGION_RULES = ("EC2.7",)  # one finding per account and region
SECURITY_GROUP_RULES = ("EC2.53", "EC2.54", "EC2.13", "EC2.14")
NETSKOPE_RULES = frozenset({"EC2.13", "EC2.14", "EC2.6", "S3.8", "IAM.3", "CloudTrail.4"})
NETSKOPE_EVERY = 3
MAX_TRAILS_PER_REGION = 5

# kind → (share of the resource findings, findings per resource)
KINDS: Mapping[str, tuple[float, int]] = {
    "security_group": (0.4, len(SECURITY_GROUP_RULES)),
    "vpc": (0.1, 1),
    "key": (0.1, 1),
    "user": (0.1, 1),
    "trail": (0.1, 1),
    "bucket": (0.2, 1),  # takes the remainder
}
RULE_OF_KIND = {"vpc": "EC2.6", "key": "KMS.4", "user": "IAM.3", "trail": "CloudTrail.4", "bucket": "S3.8"}
BENCH_RULES = (*ACCOUNT_RULES, *REGION_RULES, *SECURITY_GROUP_RULES, *RULE_OF_KIND.values())


@dataclass(frozen=True)
class CellPlan:
    """What to create in one (account, region): kind → the org-wide indices of its resources of that kind (the
    index names the resource and picks its source). Users live in the home cell. `settings`: the plan includes
    the account- and region-level findings (a growth step does not: they exist already)."""

    account: str
    region: str
    home: bool
    resources: Mapping[str, tuple[int, ...]]
    settings: bool = True


def fixed_findings(accounts: int, regions: int) -> int:
    """Findings that exist whatever N is: the account-level controls."""
    return accounts * len(ACCOUNT_RULES) + accounts * regions * len(REGION_RULES)


def resource_counts(n: int, accounts: int, regions: int) -> dict[str, int]:
    """How many resources of each kind make exactly n findings in total."""
    rest = n - fixed_findings(accounts, regions)
    if rest < 0:
        raise ValueError(
            f"{n} findings is fewer than the {fixed_findings(accounts, regions)} account-level findings of "
            f"{accounts} accounts x {regions} regions"
        )
    counts = {kind: int(rest * share) // per for kind, (share, per) in KINDS.items() if kind != "bucket"}
    counts["trail"] = min(counts["trail"], MAX_TRAILS_PER_REGION * accounts * regions)
    counts["bucket"] = rest - sum(counts[kind] * KINDS[kind][1] for kind in counts)
    return counts


def allocate(n: int, accounts: Sequence[str], regions: Sequence[str]) -> list[CellPlan]:
    """Spread the resources round-robin over the cells (users over the accounts' home cells)."""
    totals = resource_counts(n, len(accounts), len(regions))
    cells = [(account, region) for account in accounts for region in regions]
    homes = [(account, regions[0]) for account in accounts]
    per_cell: dict[tuple[str, str], dict[str, list[int]]] = {cell: {} for cell in cells}
    for kind, total in totals.items():
        targets = homes if kind == "user" else cells
        for index in range(total):
            per_cell[targets[index % len(targets)]].setdefault(kind, []).append(index)
    return [
        CellPlan(account, region, home=region == regions[0],
                 resources={kind: tuple(indices) for kind, indices in per_cell[(account, region)].items()})
        for account, region in cells
    ]


def growth(before: Sequence[CellPlan], n: int, accounts: Sequence[str], regions: Sequence[str]) -> list[CellPlan]:
    """What to add to an org planned as `before` so that it holds the plan for n findings.

    Plans are prefixes of each other (resource i of a kind always lands in the same cell), so growing an org
    from 1,000 to 10,000 findings creates only the 9,000 new ones.
    """
    after = allocate(n, accounts, regions)
    if not before:
        return after
    existing = {(c.account, c.region): c for c in before}
    out = []
    for cell in after:
        old = existing[(cell.account, cell.region)].resources
        new = {}
        for kind, indices in cell.resources.items():
            have = set(old.get(kind, ()))
            new[kind] = tuple(i for i in indices if i not in have)
        out.append(CellPlan(cell.account, cell.region, cell.home, new, settings=False))
    return out


def merge(before: Sequence[CellPlan], added: Sequence[CellPlan]) -> list[CellPlan]:
    """The plan of the org after a growth step."""
    if not before:
        return list(added)
    grown = {(c.account, c.region): c for c in added}
    out = []
    for cell in before:
        new = grown[(cell.account, cell.region)].resources
        kinds = dict.fromkeys([*cell.resources, *new])
        resources = {kind: (*cell.resources.get(kind, ()), *new.get(kind, ())) for kind in kinds}
        out.append(CellPlan(cell.account, cell.region, cell.home, resources, settings=True))
    return out


def source_for(rule_id: str, resource_index: int) -> str:
    """Which CSPM reports this finding: Netskope for every third resource of the rules it knows."""
    if rule_id in NETSKOPE_RULES and resource_index % NETSKOPE_EVERY == NETSKOPE_EVERY - 1:
        return "netskope"
    return "securityhub"


def rotated(rules: Sequence[str], start: int) -> list[str]:
    """The rules in an order that starts at `start`: overlapping controls (the four security group rules, the
    eight password policy rules) fix each other, so rotating the order lets every rule be the one that acts."""
    start %= len(rules)
    return [*rules[start:], *rules[:start]]


def interleave(groups: Sequence[Sequence[object]]) -> list[object]:
    """Round-robin over the groups (one per account), keeping each group's order.

    Security Hub does not return findings sorted by account; interleaving keeps the engine's per-chunk account
    parallelism realistic.
    """
    out: list[object] = []
    longest = max((len(g) for g in groups), default=0)
    for index in range(longest):
        out.extend(group[index] for group in groups if index < len(group))
    return out
