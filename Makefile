# Every target creates/uses .venv by itself so it works from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
TEMPLATES := $(wildcard cloudformation/*.yaml)
# target-account.yaml is linted as renderings with its ~140 toggle conditions resolved (tools/templates/resolve.py):
# cfn-lint's condition solver takes over 10 minutes and 11 GB on the committed file. W2001 (unused parameter) is
# expected there: a rendering without a rule has no use for that rule's parameters. tools/scan then runs checkov on
# the committed admin/forwarding/StackSet templates and the key renderings, and parliament on every IAM policy of
# every rendering (each rule alone included, in memory); findings fail unless tools/scan/allowlist.yaml accepts them.
RENDERED := build/rendered
LINT_REGIONS := us-east-1 eu-west-1
# The lock: requirements.txt = the runtime closure the Lambda zip bundles (boto3/botocore included);
# requirements-dev.txt = that plus tests and linters, same versions. Both pinned with hashes; `make lock` writes them.
LOCK     := requirements-dev.txt
UV       := $(VENV)/bin/uv
UV_VERSION := 0.13.9
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet --custom-compile-command "make lock"

.PHONY: install demo test lint bench package templates lock clean

# Exactly the lock, hash-checked, nothing resolved at install time; then the project itself (editable, no deps).
# `pip check` fails when pyproject.toml asks for something the lock lacks: run `make lock`.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(PY) -m pip check || { echo "pyproject.toml and $(LOCK) disagree: run make lock"; exit 1; }
	touch $(STAMP)

install: $(STAMP)

## Re-resolve the lock after editing dependencies in pyproject.toml; keeps every other pin as it is.
## `make lock UPGRADE=boto3` (or "boto3 botocore") moves those packages to their newest allowed release;
## `make lock UPGRADE=all` moves everything (exact pins in pyproject.toml — linters, moto — stay: edit them).
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	test -x $(UV) || $(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(UV) pip compile pyproject.toml --extra dev $(LOCK_FLAGS) \
		$(if $(filter all,$(UPGRADE)),--upgrade,$(addprefix --upgrade-package ,$(UPGRADE))) -o requirements-dev.txt
	$(UV) pip compile pyproject.toml $(LOCK_FLAGS) --constraint requirements-dev.txt -o requirements.txt

## The main job on the embedded default: moto server + fake Netskope, plan then apply, verify, report.
demo: $(STAMP)
	$(PY) -m demo

## The whole test suite (lint first), one pytest-xdist worker per CPU (each worker has its own in-process moto);
## `make test PYTEST_ARGS="-n 0"` runs it serially. The undeclared-permissions check covers every worker.
PYTEST_ARGS ?= -n auto
test: lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m tools.templates --check
	$(PY) -m tools.templates.resolve $(RENDERED) >/dev/null
	@# cfn-lint and the scanners side by side (one core each); the scan's report follows cfn-lint's. The committed
	@# templates are linted for a Region where AWS::SecurityHub::ActionTarget exists and one where the admin stack
	@# falls back to its custom resource (LINT_REGIONS).
	$(PY) -m tools.scan --rendered $(RENDERED) >$(RENDERED)/scan.log 2>&1 & scan=$$!; \
	$(VENV)/bin/cfn-lint --regions $(LINT_REGIONS) -- $(filter-out cloudformation/target-account.yaml,$(TEMPLATES)) && \
	$(VENV)/bin/cfn-lint --ignore-checks W2001 -- $(RENDERED)/*.yaml; linted=$$?; \
	wait $$scan; scanned=$$?; cat $(RENDERED)/scan.log; test $$linted = 0 && test $$scanned = 0

## Regenerate cloudformation/*.yaml from the catalog (after adding a remediator).
templates: $(STAMP)
	$(PY) -m tools.templates

## dist/cspm-remediation.zip (code + the locked runtime deps of requirements.txt, boto3/botocore included,
## reproducible) and dist/admin-packaged.yaml.
package: $(STAMP)
	$(PY) tools/package.py $(PACKAGE_ARGS)

## Throughput and API economy against budgets (DESIGN §7): moto + fake Netskope, 50 accounts, 1k/10k findings.
## Not part of `make test`; exits non-zero when a budget is broken.
bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
