# StudioX backend. `make run` starts the whole stack on http://localhost:$(PORT); `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PROTOS := $(shell find protos -name '*.proto')
BUF_VERSION := 1.75.0

.PHONY: install gen run test test-unit test-integration test-e2e check lint fmt typecheck buflint \
        gen-check bench lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@# Generated code lives in gen/ (top-level package `studiox`); put it on the venv's path.
	@echo "$(CURDIR)/gen" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/studiox-gen.pth"
	@rm -f $(VENV)/.installed-*
	@touch $@

gen: build/api.pb

build/api.pb: $(STAMP) $(PROTOS) scripts/codegen.py
	$(PY) scripts/codegen.py

run: gen
	$(BIN)/studiox dev run

test: gen
	$(BIN)/pytest -q

test-unit: gen
	$(BIN)/pytest -q tests/unit

test-integration: gen
	$(BIN)/pytest -q tests/integration

test-e2e: gen
	$(BIN)/pytest -q tests/e2e

bench: gen
	$(BIN)/pytest -q -m bench -s

check: lint typecheck buflint gen-check

lint: gen
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: gen
	$(BIN)/mypy

buflint: gen
	npx --yes @bufbuild/buf@$(BUF_VERSION) lint

gen-check: $(STAMP)
	$(PY) scripts/codegen.py --check

# Re-pin every dependency from requirements.in (needs network).
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install -q -r requirements.in setuptools
	.lockvenv/bin/pip freeze --exclude-editable | sort -f > requirements.lock
	rm -rf .lockvenv

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
