"""Records every AWS API call a remediator makes during the test run, as IAM actions, per remediator class and
method (assess, apply, restore).

The meta-test in tests/unit/test_catalog.py checks each against the declaration of the role that makes it: assess
calls against `read_permissions` (all the dry-run role holds), apply calls against read + write (enforce), restore
calls against read + restore (the rollback role). An action called but not declared for its stage would be
missing from that generated role and fail in AWS.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections import defaultdict
from contextvars import ContextVar

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


def install() -> callable:
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
