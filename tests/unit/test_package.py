"""`make package` (tools/package.py): a reproducible zip of the shipped packages and exactly the locked runtime
dependencies, and the packaged admin template that points at it."""

from __future__ import annotations

import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from tools import package, templates
from tools.templates import defaults

ADMIN = templates.admin_template()
RUNTIME_DEPS = {"requests", "tenacity", "aws-secretsmanager-caching"}
SDK = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil"}


def test_two_builds_are_byte_identical(tmp_path):
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    package.build_zip(first, skip_deps=True)
    package.build_zip(second, skip_deps=True)
    assert first.read_bytes() == second.read_bytes()
    assert first.stat().st_size < package.MAX_ZIP_BYTES


def test_zip_holds_the_packages_and_nothing_else(tmp_path):
    archive = tmp_path / "code.zip"
    package.build_zip(archive, skip_deps=True)
    with zipfile.ZipFile(archive) as zipped:
        names = zipped.namelist()
        infos = zipped.infolist()
    assert names == sorted(names)
    assert "functions/engine/catalog.py" in names and "connectors/finding.py" in names
    assert {name.split("/")[0] for name in names} == {"connectors", "functions"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")]
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {info.external_attr >> 16 for info in infos} == {0o100644}


def test_the_zip_bundles_the_locked_runtime_closure_sdk_included():
    """The functions run the boto3/botocore the tests ran with, not the one the Lambda runtime ships."""
    pins = {pin.name: pin for pin in package.runtime_requirements("3.13", "aarch64")}
    assert set(pins) >= RUNTIME_DEPS | SDK | {"urllib3", "idna", "certifi", "charset-normalizer"}
    assert all(pin.hashes for pin in pins.values())
    for name in ("boto3", "botocore", "requests"):  # the test environment is the lock
        assert pins[name].version == metadata.version(name)
    assert "moto" not in pins and "pytest" not in pins


def write_lock(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_markers_are_evaluated_for_the_functions_platform_not_this_one(tmp_path):
    lock = write_lock(tmp_path / "requirements.txt", (
        "# header\n"
        "old==1.0 ; python_full_version < '3.12' \\\n    --hash=sha256:aa\n    # via x\n"
        "arm==2.0 ; platform_machine == 'aarch64' \\\n    --hash=sha256:bb \\\n    --hash=sha256:cc\n"
        "win==3.0 ; sys_platform == 'win32' \\\n    --hash=sha256:dd\n"
    ))
    pins = package.runtime_requirements("3.13", "aarch64", lock=lock)
    assert [(p.name, p.version, p.hashes) for p in pins] == [("arm", "2.0", ("sha256:bb", "sha256:cc"))]
    assert pins[0].requirement_line() == "arm==2.0 --hash=sha256:bb --hash=sha256:cc"
    assert [p.name for p in package.runtime_requirements("3.11", "x86_64", lock=lock)] == ["old"]


def test_a_lock_entry_without_exact_pin_and_hashes_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="make lock"):
        package.runtime_requirements("3.13", "aarch64", lock=write_lock(tmp_path / "r.txt", "requests>=2\n"))
    with pytest.raises(SystemExit, match="make lock"):
        package.runtime_requirements("3.13", "aarch64", lock=write_lock(tmp_path / "r.txt", "requests==2.0\n"))


def test_a_build_environment_that_is_not_the_lock_is_refused():
    with pytest.raises(SystemExit, match="make install"):
        package.check_installed([package.Pin("boto3", "0.0.1", ("sha256:aa",))])
    with pytest.raises(SystemExit, match="not installed"):
        package.check_installed([package.Pin("no-such-distribution", "1.0", ("sha256:aa",))])
    package.check_installed(package.runtime_requirements("3.13", "aarch64"))


def test_lambda_target_comes_from_the_template():
    assert package.lambda_target(ADMIN) == (defaults.LAMBDA_RUNTIME.removeprefix("python"), "aarch64")


def test_main_writes_the_packaged_template(tmp_path, capsys):
    assert package.main(["--dist", str(tmp_path), "--skip-deps", "--bucket", "code-bucket"]) == 0
    archive = tmp_path / "cspm-remediation.zip"
    digest = package.sha256(archive)
    packaged = yaml.safe_load((tmp_path / "admin-packaged.yaml").read_text())
    assert packaged["Parameters"]["CodeS3Key"]["Default"] == f"cspm-remediation-{digest}.zip"
    assert packaged["Parameters"]["CodeS3Bucket"]["Default"] == "code-bucket"
    packaged["Parameters"]["CodeS3Key"] = ADMIN["Parameters"]["CodeS3Key"]
    packaged["Parameters"]["CodeS3Bucket"] = ADMIN["Parameters"]["CodeS3Bucket"]
    assert packaged == ADMIN
    out = capsys.readouterr().out
    assert str(archive) in out and digest in out and "bytes" in out
