"""Build the Lambda zip and a template ready for `aws cloudformation deploy` (`make package`).

    dist/cspm-remediation.zip   connectors/ and functions/ plus the runtime dependencies the Lambda runtime
                                does not provide (boto3, botocore and s3transfer are left to the runtime),
                                at the versions pinned in the current environment, as wheels for the
                                functions' runtime and architecture (read from cloudformation/admin.yaml).
    dist/admin-packaged.yaml    cloudformation/admin.yaml with CodeS3Key defaulting to
                                cspm-remediation-<sha256>.zip, so a new build updates the functions.

The zip is reproducible: sorted entries, fixed timestamps and permissions, no __pycache__ — the same sources and
wheels give the same bytes. `--skip-deps` leaves the dependencies out (offline tests).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TEMPLATE = ROOT / "cloudformation" / "admin.yaml"
PROJECT = "cspm-remediate"
PACKAGES = ("connectors", "functions")
PACKAGE_DATA = (".py", ".json")
ZIP_NAME = "cspm-remediation.zip"
PACKAGED_TEMPLATE = "admin-packaged.yaml"
RUNTIME_PROVIDED = frozenset({"boto3", "botocore", "s3transfer"})  # the Lambda Python runtime ships these
MAX_ZIP_BYTES = 10 * 1024 * 1024
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold
FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--
SKIPPED_PARTS = frozenset({"__pycache__", "bin", "tests"})
ARCHITECTURES = {"arm64": "aarch64", "x86_64": "x86_64"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# -- what the functions run on ---------------------------------------------------------------------------------------
def lambda_target(template: dict[str, Any]) -> tuple[str, str]:
    """(python version, machine) of the template's functions, e.g. ("3.13", "aarch64"); all must agree."""
    functions = [r["Properties"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"]
    targets = {(f["Runtime"].removeprefix("python"), ARCHITECTURES[f.get("Architectures", ["x86_64"])[0]])
               for f in functions}
    if len(targets) != 1:
        raise SystemExit(f"the functions in {ADMIN_TEMPLATE.name} disagree on runtime/architecture: {targets}")
    return targets.pop()


def marker_environment(python_version: str, machine: str) -> dict[str, str]:
    return {
        "python_version": python_version, "python_full_version": f"{python_version}.0",
        "platform_system": "Linux", "sys_platform": "linux", "os_name": "posix", "platform_machine": machine,
        "platform_python_implementation": "CPython", "implementation_name": "cpython", "extra": "",
    }


def runtime_requirements(python_version: str, machine: str) -> list[str]:
    """`name==version` for the project's runtime dependencies and theirs, as installed here, minus what the
    Lambda runtime provides (and whatever only they need)."""
    environment = marker_environment(python_version, machine)
    pinned: dict[str, str] = {}
    pending = [Requirement(text) for text in metadata.requires(PROJECT) or []]
    while pending:
        requirement = pending.pop()
        name = canonical(requirement.name)
        if name in RUNTIME_PROVIDED or name in pinned:
            continue
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        pinned[name] = metadata.version(name)
        pending.extend(Requirement(text) for text in metadata.requires(name) or [])
    return [f"{name}=={version}" for name, version in sorted(pinned.items())]


def install_dependencies(requirements: list[str], target: Path, python_version: str, machine: str) -> None:
    """Wheels for the Lambda platform (never the build machine's): pip install --target, no dependency
    resolution (the list is already the closure), no bytecode."""
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--no-deps", "--only-binary=:all:", "--target", str(target),
        "--implementation", "cp", "--python-version", python_version,
        "--platform", f"manylinux2014_{machine}", "--platform", f"manylinux_2_28_{machine}",
        *requirements,
    ]
    subprocess.run(command, check=True)  # noqa: S603 - our own interpreter, arguments from our metadata


# -- the zip ---------------------------------------------------------------------------------------------------------
def source_files(root: Path = ROOT) -> Iterator[tuple[str, Path]]:
    """(archive name, file) of the shipped packages: their modules and package data only."""
    for package in PACKAGES:
        for path in (root / package).rglob("*"):
            if path.is_file() and path.suffix in PACKAGE_DATA and not _skipped(path.relative_to(root)):
                yield path.relative_to(root).as_posix(), path


def dependency_files(directory: Path) -> Iterator[tuple[str, Path]]:
    for path in directory.rglob("*"):
        relative = path.relative_to(directory)
        if path.is_file() and not _skipped(relative) and path.suffix != ".pyc":
            yield relative.as_posix(), path


def _skipped(relative: Path) -> bool:
    return bool(SKIPPED_PARTS.intersection(relative.parts))


def write_zip(entries: Iterable[tuple[str, Path]], destination: Path) -> None:
    """Sorted entries, fixed date and mode, one compression level: the same files give the same bytes."""
    unique = dict(entries)
    destination.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(destination, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in sorted(unique):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.external_attr = FILE_MODE
            info.create_system = 3  # unix, so the mode above is honoured
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, unique[name].read_bytes(), compresslevel=9)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_zip(destination: Path, skip_deps: bool = False) -> list[str]:
    """Build the zip; returns the pinned requirements it contains."""
    template = yaml.safe_load(ADMIN_TEMPLATE.read_text(encoding="utf-8"))
    python_version, machine = lambda_target(template)
    requirements = [] if skip_deps else runtime_requirements(python_version, machine)
    with tempfile.TemporaryDirectory(prefix="cspm-package-") as scratch:
        entries = list(source_files())
        if requirements:
            install_dependencies(requirements, Path(scratch), python_version, machine)
            entries += list(dependency_files(Path(scratch)))
        write_zip(entries, destination)
    size = destination.stat().st_size
    if size > MAX_ZIP_BYTES:
        raise SystemExit(f"{destination} is {size} bytes, over the {MAX_ZIP_BYTES}-byte budget")
    return requirements


# -- the packaged template -------------------------------------------------------------------------------------------
def code_key(digest: str) -> str:
    return f"{ZIP_NAME.removesuffix('.zip')}-{digest}.zip"


def packaged_template(key: str, bucket: str | None = None) -> str:
    """admin.yaml with the code location defaulted to this build."""
    template = yaml.safe_load(ADMIN_TEMPLATE.read_text(encoding="utf-8"))
    template["Parameters"]["CodeS3Key"]["Default"] = key
    if bucket:
        template["Parameters"]["CodeS3Bucket"]["Default"] = bucket
    header = f"# Packaged by tools/package.py from cloudformation/admin.yaml: the Lambda code is {key}.\n"
    return header + yaml.safe_dump(template, sort_keys=False, width=120, allow_unicode=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output directory (default dist/)")
    parser.add_argument("--bucket", help="also default CodeS3Bucket to this bucket in the packaged template")
    parser.add_argument("--skip-deps", action="store_true", help="leave the dependencies out (offline builds)")
    args = parser.parse_args(argv)

    archive = args.dist / ZIP_NAME
    requirements = build_zip(archive, skip_deps=args.skip_deps)
    digest = sha256(archive)
    key = code_key(digest)
    template = args.dist / PACKAGED_TEMPLATE
    template.write_text(packaged_template(key, args.bucket), encoding="utf-8")

    print(f"{archive}  {archive.stat().st_size} bytes  sha256 {digest}")
    print(f"  dependencies: {', '.join(requirements) if requirements else 'none (--skip-deps)'}")
    print(f"{template}  CodeS3Key default {key}")
    print(f"next: aws s3 cp {archive} s3://{args.bucket or '<bucket>'}/{key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
