"""Build the Lambda zip and a template ready for `aws cloudformation deploy` (`make package`).

    dist/cspm-remediation.zip   connectors/ and functions/ plus exactly the locked runtime dependencies
                                (requirements.txt, hash-checked), boto3 and botocore included: the functions
                                run the SDK the tests ran with, not whichever one the Lambda runtime ships
                                that day. Wheels for the functions' runtime and architecture (read from
                                cloudformation/admin.yaml).
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
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
ADMIN_TEMPLATE = ROOT / "cloudformation" / "admin.yaml"
RUNTIME_LOCK = ROOT / "requirements.txt"  # written by `make lock`
PACKAGES = ("connectors", "functions")
PACKAGE_DATA = (".py", ".json")
ZIP_NAME = "cspm-remediation.zip"
PACKAGED_TEMPLATE = "admin-packaged.yaml"
MAX_ZIP_BYTES = 30 * 1024 * 1024  # botocore is most of it; Lambda accepts 50 MiB zipped, 250 MiB unzipped
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


@dataclass(frozen=True)
class Pin:
    name: str
    version: str
    hashes: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"

    def requirement_line(self) -> str:
        return " ".join([str(self), *(f"--hash={h}" for h in self.hashes)])


def read_lock(path: Path = RUNTIME_LOCK) -> list[tuple[Requirement, tuple[str, ...]]]:
    """(requirement, hashes) per entry of a `uv pip compile --generate-hashes` file (pip's requirements format:
    backslash continuations, `# via` comments)."""
    entries: list[tuple[Requirement, tuple[str, ...]]] = []
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()  # hashes hold no "#": what follows one is a comment
        if not line:
            continue
        words = line.split()
        hashes = tuple(w.removeprefix("--hash=") for w in words if w.startswith("--hash="))
        requirement = Requirement(" ".join(w for w in words if not w.startswith("--hash=")))
        entries.append((requirement, hashes))
    return entries


def runtime_requirements(python_version: str, machine: str, lock: Path = RUNTIME_LOCK) -> list[Pin]:
    """The locked runtime closure for the functions' platform (markers evaluated for it, not for this machine).
    Fails when this environment holds another version: the zip must hold what the tests ran with."""
    environment = marker_environment(python_version, machine)
    pins: list[Pin] = []
    for requirement, hashes in read_lock(lock):
        if requirement.marker and not requirement.marker.evaluate(environment):
            continue
        (specifier,) = requirement.specifier
        if specifier.operator != "==" or not hashes:
            raise SystemExit(f"{lock.name}: {requirement} is not pinned with hashes: run `make lock`")
        pins.append(Pin(canonical(requirement.name), specifier.version, hashes))
    return sorted(pins, key=lambda pin: pin.name)


def check_installed(pins: list[Pin]) -> None:
    """The build (and test) environment must be the lock: `make install` makes it so."""
    stale = []
    for pin in pins:
        try:
            installed = metadata.version(pin.name)
        except metadata.PackageNotFoundError:
            installed = "not installed"
        if installed != pin.version:
            stale.append(f"{pin} (here: {installed})")
    if stale:
        raise SystemExit(f"this environment is not {RUNTIME_LOCK.name}: {', '.join(stale)}; run `make install`")


def install_dependencies(pins: list[Pin], target: Path, python_version: str, machine: str) -> None:
    """Wheels for the Lambda platform (never the build machine's): pip install --target, hash-checked, no
    dependency resolution (the lock is already the closure), no bytecode."""
    requirements = target.parent / "requirements.txt"
    requirements.write_text("".join(pin.requirement_line() + "\n" for pin in pins), encoding="utf-8")
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--no-deps", "--require-hashes", "--only-binary=:all:", "--target", str(target),
        "--implementation", "cp", "--python-version", python_version,
        "--platform", f"manylinux2014_{machine}", "--platform", f"manylinux_2_28_{machine}",
        "-r", str(requirements),
    ]
    subprocess.run(command, check=True)  # noqa: S603 - our own interpreter, arguments from our lock


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


def build_zip(destination: Path, skip_deps: bool = False) -> list[Pin]:
    """Build the zip; returns the pinned requirements it contains."""
    template = yaml.safe_load(ADMIN_TEMPLATE.read_text(encoding="utf-8"))
    python_version, machine = lambda_target(template)
    requirements = [] if skip_deps else runtime_requirements(python_version, machine)
    check_installed(requirements)
    with tempfile.TemporaryDirectory(prefix="cspm-package-") as scratch:
        entries = list(source_files())
        if requirements:
            site = Path(scratch) / "site"
            install_dependencies(requirements, site, python_version, machine)
            entries += list(dependency_files(site))
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
    print(f"  dependencies: {', '.join(map(str, requirements)) if requirements else 'none (--skip-deps)'}")
    print(f"{template}  CodeS3Key default {key}")
    print(f"next: aws s3 cp {archive} s3://{args.bucket or '<bucket>'}/{key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
