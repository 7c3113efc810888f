# Every target creates/uses .venv by itself so it works from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
TEMPLATES := $(wildcard cloudformation/*.yaml)

.PHONY: install demo test lint bench package templates clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## The main job on the embedded default: moto server + fake Netskope, plan then apply, verify, report.
demo: $(STAMP)
	$(PY) -m demo

## The whole test suite (lint first).
test: lint
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m tools.templates --check
	@if [ -n "$(TEMPLATES)" ]; then $(VENV)/bin/cfn-lint $(TEMPLATES); fi

## Regenerate cloudformation/*.yaml from the catalog (after adding a remediator).
templates: $(STAMP)
	$(PY) -m tools.templates

## dist/cspm-remediation.zip (code + non-boto3 deps, reproducible) and dist/admin-packaged.yaml.
package: $(STAMP)
	$(PY) tools/package.py $(PACKAGE_ARGS)

## Throughput and API economy against budgets (DESIGN §7): moto + fake Netskope, 50 accounts, 1k/10k findings.
## Not part of `make test`; exits non-zero when a budget is broken.
bench: $(STAMP)
	$(PY) -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
