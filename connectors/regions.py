"""AWS region display names ↔ region codes.

CSPM tools report regions by display name, and each spells them its own way (Netskope: "US East(N. Virginia)",
"EU(Ireland)", "South America(Sao Paulo)"). Remediation needs the code, so names are matched loosely: case,
whitespace, punctuation and accents are ignored, and "EU" means "Europe". An unknown name gives None — never an
exception — so the caller can keep the finding and say which region it could not place.
"""

from __future__ import annotations

import re
import unicodedata

from connectors.finding import GLOBAL_REGION, REGION_CODE_RE

# Code → the AWS display name. Commercial partition, GovCloud, China and the European Sovereign Cloud, as botocore's
# endpoints.json lists them (tests/unit/test_regions.py checks the table against a snapshot of that list,
# tests/fixtures/aws_regions.json, never the installed botocore's; a region newer than the table passes by its code).
REGIONS: dict[str, str] = {
    "af-south-1": "Africa (Cape Town)",
    "ap-east-1": "Asia Pacific (Hong Kong)",
    "ap-east-2": "Asia Pacific (Taipei)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "ap-northeast-2": "Asia Pacific (Seoul)",
    "ap-northeast-3": "Asia Pacific (Osaka)",
    "ap-south-1": "Asia Pacific (Mumbai)",
    "ap-south-2": "Asia Pacific (Hyderabad)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-southeast-2": "Asia Pacific (Sydney)",
    "ap-southeast-3": "Asia Pacific (Jakarta)",
    "ap-southeast-4": "Asia Pacific (Melbourne)",
    "ap-southeast-5": "Asia Pacific (Malaysia)",
    "ap-southeast-6": "Asia Pacific (New Zealand)",
    "ap-southeast-7": "Asia Pacific (Thailand)",
    "ca-central-1": "Canada (Central)",
    "ca-west-1": "Canada West (Calgary)",
    "eu-central-1": "Europe (Frankfurt)",
    "eu-central-2": "Europe (Zurich)",
    "eu-north-1": "Europe (Stockholm)",
    "eu-south-1": "Europe (Milan)",
    "eu-south-2": "Europe (Spain)",
    "eu-west-1": "Europe (Ireland)",
    "eu-west-2": "Europe (London)",
    "eu-west-3": "Europe (Paris)",
    "il-central-1": "Israel (Tel Aviv)",
    "me-central-1": "Middle East (UAE)",
    "me-south-1": "Middle East (Bahrain)",
    "mx-central-1": "Mexico (Central)",
    "sa-east-1": "South America (São Paulo)",
    "us-east-1": "US East (N. Virginia)",
    "us-east-2": "US East (Ohio)",
    "us-west-1": "US West (N. California)",
    "us-west-2": "US West (Oregon)",
    "us-gov-east-1": "AWS GovCloud (US-East)",
    "us-gov-west-1": "AWS GovCloud (US-West)",
    "cn-north-1": "China (Beijing)",
    "cn-northwest-1": "China (Ningxia)",
    "eusc-de-east-1": "AWS European Sovereign Cloud (Germany)",
}

# Other names seen for the same regions: former AWS names and short forms other tools print.
ALIASES: dict[str, str] = {
    "Asia Pacific (Osaka-Local)": "ap-northeast-3",
    "AWS GovCloud (US)": "us-gov-west-1",
    "GovCloud (US-East)": "us-gov-east-1",
    "GovCloud (US-West)": "us-gov-west-1",
    "GovCloud (US)": "us-gov-west-1",
    "Canada (Calgary)": "ca-west-1",
    "Middle East (United Arab Emirates)": "me-central-1",
}

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_EU_PREFIX = re.compile(r"^eu\b")


def _key(name: str) -> str:
    """Fold accents and case, read a leading "EU" as "Europe", then keep only letters and digits."""
    folded = unicodedata.normalize("NFKD", name)
    folded = "".join(c for c in folded if not unicodedata.combining(c)).casefold().strip()
    folded = _EU_PREFIX.sub("europe", folded)
    return _NOT_ALNUM.sub("", folded)


_BY_KEY: dict[str, str] = {_key(name): code for code, name in REGIONS.items()}
_BY_KEY.update({_key(name): code for name, code in ALIASES.items()})


def region_code(display_name: object) -> str | None:
    """The region code for a display name, a region code, or "global"; None when unknown (never raises)."""
    if not isinstance(display_name, str):
        return None
    text = display_name.strip()
    lowered = text.lower()
    if lowered == GLOBAL_REGION:
        return GLOBAL_REGION
    if REGION_CODE_RE.fullmatch(lowered):  # a code not (yet) in the table is still accepted as-is
        return lowered
    key = _key(text)
    return _BY_KEY.get(key) if key else None


def region_name(code: object) -> str | None:
    """The AWS display name of a region code ("global" for "global"); None when the code is not in the table."""
    if not isinstance(code, str):
        return None
    code = code.strip().lower()
    return GLOBAL_REGION if code == GLOBAL_REGION else REGIONS.get(code)
