"""Region display names ↔ codes: complete against AWS's list (a snapshot of botocore's), tolerant of Netskope's
spellings; a region newer than the table passes through by its code."""

from __future__ import annotations

import json
from pathlib import Path

import botocore
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.regions import ALIASES, REGIONS, region_code, region_name

PARTITIONS = ("aws", "aws-us-gov", "aws-cn", "aws-eusc")

# AWS's own display names, as botocore's endpoints.json gave them when the table was last checked (the file says
# which botocore): the tests below do not move with the installed botocore, so a new AWS region cannot fail CI.
SNAPSHOT = json.loads((Path(__file__).parent.parent / "fixtures" / "aws_regions.json").read_text(encoding="utf-8"))
AWS_REGIONS: dict[str, str] = SNAPSHOT["regions"]


def _installed_botocore_regions() -> dict[str, str]:
    data = json.loads((Path(botocore.__file__).parent / "data" / "endpoints.json").read_text())
    return {
        code: info["description"]
        for partition in data["partitions"]
        if partition["partition"] in PARTITIONS
        for code, info in partition["regions"].items()
    }


@pytest.mark.parametrize(("code", "description"), sorted(AWS_REGIONS.items()))
def test_every_aws_region_description_maps_to_its_code(code: str, description: str) -> None:
    assert region_code(description) == code
    assert code in REGIONS, f"{code} ({description}) missing from the table"


def test_table_has_no_region_aws_does_not_know() -> None:
    assert set(REGIONS) <= set(AWS_REGIONS)


def test_a_region_newer_than_the_table_still_passes_through() -> None:
    """Whatever the installed botocore knows beyond the snapshot is accepted by its code (remediation goes on;
    only its display name is unknown). Refresh tests/fixtures/aws_regions.json and the table when this lists any."""
    newer = {code: name for code, name in _installed_botocore_regions().items() if code not in AWS_REGIONS}
    for code in [*newer, "ap-southeast-9", "us-gov-north-1"]:  # (the last two: shapes a next region may take)
        assert code in newer or code not in REGIONS
        assert region_code(code) == code
        assert region_code(code.upper()) == code


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("US East(N. Virginia)", "us-east-1"),
        ("US East(Ohio)", "us-east-2"),
        ("US West(N. California)", "us-west-1"),
        ("US West(Oregon)", "us-west-2"),
        ("EU(Ireland)", "eu-west-1"),
        ("EU (Frankfurt)", "eu-central-1"),
        ("EU(London)", "eu-west-2"),
        ("Asia Pacific(Mumbai)", "ap-south-1"),
        ("South America(Sao Paulo)", "sa-east-1"),
        ("South America (São Paulo)", "sa-east-1"),
        ("  us east (n. virginia)  ", "us-east-1"),
        ("US  East   (N.  Virginia)", "us-east-1"),
        ("ASIA PACIFIC (TOKYO)", "ap-northeast-1"),
        ("Middle East (UAE)", "me-central-1"),
        ("Canada West (Calgary)", "ca-west-1"),
        ("Israel (Tel Aviv)", "il-central-1"),
        ("Mexico (Central)", "mx-central-1"),
        ("AWS GovCloud (US-West)", "us-gov-west-1"),
        ("AWS GovCloud (US)", "us-gov-west-1"),
        ("China (Ningxia)", "cn-northwest-1"),
        ("Asia Pacific (Osaka-Local)", "ap-northeast-3"),
        ("AWS European Sovereign Cloud (Germany)", "eusc-de-east-1"),
        ("eusc-de-east-1", "eusc-de-east-1"),
    ],
)
def test_netskope_and_loose_spellings(name: str, code: str) -> None:
    assert region_code(name) == code


def test_codes_and_global_pass_through() -> None:
    assert region_code("us-east-1") == "us-east-1"
    assert region_code(" EU-WEST-3 ") == "eu-west-3"
    assert region_code("global") == "global"
    assert region_code("Global") == "global"
    # A well-formed code not yet in the table is accepted as-is (new regions must not block remediation).
    assert region_code("xx-future-9") == "xx-future-9"


@pytest.mark.parametrize("name", ["", "   ", "Mars (Olympus Mons)", "West Europe", "US East", "EU", "(", "us_east_1"])
def test_unknown_names_give_none(name: str) -> None:
    assert region_code(name) is None


def test_non_strings_give_none() -> None:
    for value in (None, 1, 1.5, [], {}, b"us-east-1"):
        assert region_code(value) is None  # type: ignore[arg-type]
        assert region_name(value) is None  # type: ignore[arg-type]


def test_region_name_round_trips() -> None:
    for code, name in REGIONS.items():
        assert region_name(code) == name
        assert region_code(name) == code
    assert region_name("us-east-1") == "US East (N. Virginia)"
    assert region_name("global") == "global"
    assert region_name("xx-nowhere-1") is None


def test_aliases_point_at_known_regions() -> None:
    assert set(ALIASES.values()) <= set(REGIONS)


@given(st.text())
def test_region_code_never_raises(text: str) -> None:
    result = region_code(text)
    assert result is None or isinstance(result, str)
