"""Records every AWS API call a remediator makes during the test run, as IAM actions, per remediator class and
method (assess, apply, restore, restore_fields), and fails the run when one was not declared for its stage.

Each call is checked against the declaration of the role that makes it: assess calls against `read_permissions`
(all the dry-run role holds), apply calls against read + write (enforce), restore and restore_fields calls
against read + restore (the rollback role). An action called but not declared for its stage would be missing from
that generated role and fail in AWS.

A pytest plugin (registered by tests/conftest.py, or `-p tests.permission_recorder`): every test process records
its own calls and judges them at the end of its session (a call is undeclared or not on its own, so the verdicts
of several processes simply add up). Under pytest-xdist each worker hands its verdict to the controller through
xdist's `workeroutput`; the controller (or the only process, without xdist) adds one failed report,
`tests/permission_recorder.py::every_called_action_is_declared_for_its_stage`, listing every undeclared action —
so the summary counts it as a failure and the exit status is 1.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import pkgutil
from collections import defaultdict
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

import pytest
from botocore.client import BaseClient

import functions.remediators as remediators_package
from functions.remediators.base import NotifyOnlyRemediator, Remediator
from tests.iam_actions import iam_action

# remediator class → method name (assess / apply / restore) → IAM actions called inside it
CALLED: dict[type[Remediator], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
_ACTIVE: ContextVar[tuple[type[Remediator], str] | None] = ContextVar("active_remediator", default=None)
_WRAPPED_METHODS = ("assess", "apply", "restore", "restore_fields")


def _product_subclasses() -> list[type[Remediator]]:
    """Every Remediator subclass defined in functions/remediators (shared bases included, tests' stubs not)."""
    for module in pkgutil.iter_modules(remediators_package.__path__):
        importlib.import_module(f"{remediators_package.__name__}.{module.name}")
    found: list[type[Remediator]] = []
    pending = list(Remediator.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith(remediators_package.__name__ + ".") and cls not in found:
            found.append(cls)
    return found


def remediator_classes() -> list[type[Remediator]]:
    """The public concrete remediators: each must be registered in the catalog (`_Private` bases need not)."""
    return [
        cls for cls in _product_subclasses()
        if not inspect.isabstract(cls) and cls is not NotifyOnlyRemediator and not cls.__name__.startswith("_")
    ]


# What each method's role holds: assess runs at dry-run (reads), apply at enforce (reads and writes), restore and
# restore_fields (the field-level rollback) with the rollback role (reads and restores).
STAGE_GRANTS = {"assess": ("read",), "apply": ("read", "write"), "restore": ("read", "restore"),
                "restore_fields": ("read", "restore")}

Undeclared = dict[str, dict[str, list[str]]]  # remediator class name → method → actions called, not granted


def undeclared_calls(called: Mapping[type[Remediator], Mapping[str, set[str]]],
                     grants: Mapping[str, tuple[str, ...]] = STAGE_GRANTS) -> Undeclared:
    """{remediator: {method: actions called there but not granted to that method's role}}."""
    found: Undeclared = {}
    for cls, by_method in called.items():
        for method, actions in by_method.items():
            granted = {a for stage in grants[method] for a in cls.permissions_for(stage)}
            if actions - granted:
                found.setdefault(cls.__name__, {})[method] = sorted(actions - granted)
    return found


def merge(into: Undeclared, other: Undeclared) -> None:
    for name, by_method in other.items():
        for method, actions in by_method.items():
            merged = into.setdefault(name, {}).setdefault(method, [])
            merged[:] = sorted({*merged, *actions})


def install() -> Callable[[], None]:
    """Start recording; returns a function that stops it."""
    original_call = BaseClient._make_api_call

    def recording_call(self: BaseClient, operation_name: str, api_params: dict):
        active = _ACTIVE.get()
        if active is not None:
            model = self.meta.service_model
            cls, method = active
            CALLED[cls][method].add(iam_action(model.service_name, model.signing_name, operation_name))
        return original_call(self, operation_name, api_params)

    undo = [(BaseClient, "_make_api_call", original_call)]
    BaseClient._make_api_call = recording_call
    for cls in _product_subclasses():  # bases too: their methods run for the subclasses that inherit them
        for name in _WRAPPED_METHODS:
            if name in cls.__dict__:
                undo.append((cls, name, cls.__dict__[name]))
                setattr(cls, name, _attributing(cls.__dict__[name], name))

    def uninstall() -> None:
        for owner, name, original in reversed(undo):
            setattr(owner, name, original)

    return uninstall


def _attributing(method, name: str):
    """Calls made inside the method count for the runtime class of the remediator (subclasses included) and that
    method; a method called from another (apply re-reading through assess) counts as the inner one."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        token = _ACTIVE.set((type(self), name))
        try:
            return method(self, *args, **kwargs)
        finally:
            _ACTIVE.reset(token)

    return wrapper


# -- the pytest plugin -------------------------------------------------------------------------------------------

_WORKER_KEY = "cspm_undeclared_iam_actions"
REPORT_NODEID = "tests/permission_recorder.py::every_called_action_is_declared_for_its_stage"
_uninstall: Callable[[], None] | None = None
_from_workers: Undeclared = {}


def pytest_sessionstart(session: pytest.Session) -> None:
    global _uninstall
    _uninstall = install()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist controller: a worker finished; keep its verdict."""
    merge(_from_workers, json.loads(getattr(node, "workeroutput", {}).get(_WORKER_KEY, "{}")))


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    global _uninstall
    if _uninstall is not None:
        _uninstall()
        _uninstall = None
    undeclared = undeclared_calls(CALLED)
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller judges
        workeroutput[_WORKER_KEY] = json.dumps(undeclared)
        return
    merge(undeclared, _from_workers)
    if not undeclared:
        return
    lines = [f"  {name}.{method}: {', '.join(actions)}"
             for name, by_method in sorted(undeclared.items()) for method, actions in sorted(by_method.items())]
    report = pytest.TestReport(
        nodeid=REPORT_NODEID, location=("tests/permission_recorder.py", None, REPORT_NODEID.split("::")[1]),
        keywords={}, outcome="failed", when="call", longrepr="\n".join([
            "IAM actions called but not declared for their stage (assess: read; apply: read + write; "
            "restore, restore_fields: read + restore), by remediator.method:", *lines,
            "Declare them in the remediator's read_/write_/restore_permissions (then python -m tools.templates).",
        ]),
    )
    session.config.hook.pytest_runtest_logreport(report=report)
    session.testsfailed += 1
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
