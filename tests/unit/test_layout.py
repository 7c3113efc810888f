"""The layers stay apart: what the Lambda runs imports nothing from the CLI, the build tools or the tests."""

import json
import subprocess
import sys

import pytest

FORBIDDEN = ("functions.cli", "tools", "tests", "demo", "bench")


@pytest.mark.parametrize("module", ["functions.aws_lambda.handlers", "functions.engine.engine"])
def test_runtime_modules_import_no_cli_build_or_test_code(module):
    code = f"import json, sys; import {module}; print(json.dumps(sorted(sys.modules)))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,  # noqa: S603 (our interpreter)
                                       text=True).stdout)
    leaked = [name for name in loaded if name.split(".")[0] in FORBIDDEN or name.startswith("functions.cli")]
    assert leaked == []
    assert module in loaded
