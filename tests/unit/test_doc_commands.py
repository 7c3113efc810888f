"""Every `cspm-remediate` command the README and DEPLOY.md show parses as written: its subcommand, flags and
arguments exist (the commands that run locally are also run end to end by the e2e tests)."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from functions.cli.main import build_parser

ROOT = Path(__file__).parent.parent.parent
DOCS = ("README.md", "cloudformation/DEPLOY.md")


def documented_commands(text: str) -> list[str]:
    """`cspm-remediate …` in shell blocks (continuations joined; comments, pipes and redirections cut) and in
    inline code (except a mention of one flag, as in "see `cspm-remediate show --run`")."""
    commands = []
    for block in re.findall(r"```(?:sh|bash)\n(.*?)```", text, re.S):
        for line in re.sub(r"\\\n\s*", " ", block).splitlines():
            found = re.search(r"(?:^|[|;(])\s*(cspm-remediate\s.*)", line)
            if found:
                commands.append(re.split(r"\s+(?:#\s|[>|]|\)|2>)", found.group(1))[0])
    inline = re.sub(r"```.*?```", "", text, flags=re.S)
    mentioned = [re.sub(r"\s+", " ", c) for c in re.findall(r"`(cspm-remediate\s[^`]+)`", inline)]
    commands += [c for c in mentioned if not re.search(r"\s--[\w-]+$", c)]  # not "see `… show --run`"
    return commands


CASES = [(doc, command) for doc in DOCS for command in documented_commands((ROOT / doc).read_text("utf-8"))]


def test_the_docs_show_the_commands_of_the_audit_and_plan_steps():
    shown = {" ".join(c.split()[:2]) for _, c in CASES}
    assert shown >= {"cspm-remediate history", "cspm-remediate show", "cspm-remediate rollback",
                     "cspm-remediate plan", "cspm-remediate apply", "cspm-remediate pull", "cspm-remediate normalize"}


@pytest.mark.parametrize(("doc", "command"), CASES, ids=[f"{d}:{c[15:60]}" for d, c in CASES])
def test_every_documented_command_parses(doc, command):
    words = shlex.split(command.replace("…", "X"))[1:]
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            build_parser().parse_args(words)
    except SystemExit as exit_info:
        why = err.getvalue().strip().splitlines()[-1]
        pytest.fail(f"{doc}: `{command}` does not parse (exit {exit_info.code}): {why}")
