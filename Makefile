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

# Regenerate the committed Python code (gen/) after editing protos/; `make check` fails on drift.
gen: $(STAMP)
	$(PY) scripts/codegen.py --python --descriptor

build/api.pb: $(STAMP) $(PROTOS) scripts/codegen.py
	$(PY) scripts/codegen.py --descriptor

# REPLICAS=2 make run: every service twice behind Envoy (scheduler replicas elect one leader).
run: build/api.pb
	$(BIN)/studiox dev run

test: build/api.pb
	$(BIN)/pytest -q

test-unit: build/api.pb
	$(BIN)/pytest -q tests/unit

test-integration: build/api.pb
	$(BIN)/pytest -q tests/integration

test-e2e: build/api.pb
	$(BIN)/pytest -q tests/e2e

# Benchmarks, soak and chaos (several minutes; installs Debian's wrk when missing). Writes
# docs/PERFORMANCE.md and docs/RELIABILITY.md.
bench: build/api.pb
	$(BIN)/pytest -q -m bench -s tests/bench/test_throughput.py \
		tests/bench/test_reset_scale.py tests/bench/test_reliability.py

check: lint typecheck buflint gen-check validate-deploy

lint: build/api.pb
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: build/api.pb
	$(BIN)/mypy

buflint: build/api.pb
	npx --yes @bufbuild/buf@$(BUF_VERSION) lint

gen-check: $(STAMP)
	$(PY) scripts/codegen.py --check

# Deployment files checked without Docker or a cluster: docker-compose.yml against the compose
# specification schema, deploy/k8s against the Kubernetes schemas, the gateway's rendered Envoy config
# with `envoy --mode validate`, the Dockerfile's sources (docs/DEPLOY.md).
.PHONY: validate-deploy
validate-deploy: build/api.pb
	$(PY) scripts/validate_deploy.py

# Re-pin every dependency from requirements.in (needs network).
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install -q -r requirements.in setuptools
	.lockvenv/bin/pip freeze --exclude-editable | sort -f > requirements.lock
	rm -rf .lockvenv

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
