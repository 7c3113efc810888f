"""The layers stay apart: what the Lambda runs imports nothing from the CLI, the build tools or the tests, and the
zip (functions/ and connectors/, tools/package.py) holds only modules an entry point reaches."""

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tools.templates.lambdas import LAMBDAS

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("functions", "connectors")
FORBIDDEN = ("functions.cli", "tools", "tests", "demo", "bench")
# Every function of the admin stack, by the module its Handler names; the command line by its console script.
LAMBDA_MODULES = sorted({function.handler.rpartition(".")[0] for function in LAMBDAS})
CLI_MODULE = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"][
    "cspm-remediate"].partition(":")[0]


@pytest.mark.parametrize("module", [*LAMBDA_MODULES, "functions.engine.engine"])
def test_runtime_modules_import_no_cli_build_or_test_code(module):
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,  # noqa: S603 (our interpreter)
                                       text=True).stdout)
    leaked = [name for name in loaded if name.split(".")[0] in FORBIDDEN or name.startswith("functions.cli")]
    assert leaked == []
    assert module in loaded


def shipped_modules() -> dict[str, Path]:
    modules = {}
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """The shipped modules a module imports anywhere in its body (deferred imports inside functions included),
    with the packages on the way (importing a.b.c runs a/__init__ and a/b/__init__)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            found.update(".".join(parts[:n]) for n in range(1, len(parts) + 1) if ".".join(parts[:n]) in modules)
    return found


def test_every_shipped_module_is_reached_from_a_lambda_handler_or_the_cli():
    """A module under functions/ or connectors/ that neither a Lambda handler nor the CLI imports is test
    support or a build step: it belongs in tests/ or tools/, not in the zip."""
    modules = shipped_modules()
    assert set(LAMBDA_MODULES) | {CLI_MODULE} <= set(modules)
    reached: set[str] = set()
    pending = [*LAMBDA_MODULES, CLI_MODULE]
    while pending:
        module = pending.pop()
        if module not in reached:
            reached.add(module)
            pending.extend(imports_of(modules[module], modules) - reached)
    assert sorted(set(modules) - reached) == []


def test_bench_and_tests_share_the_demos_org_builder_through_its_public_names():
    """One org builder (demo/moto_org.py) for the demo, the bench and the tests: they import its public names,
    never a private helper of a demo module (a `_name` is free to change with the demo)."""
    private = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.module}.{alias.name}"
        for folder in ("bench", "tests")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "demo"
        for alias in node.names
        if alias.name.startswith("_")
    ]
    assert private == []
