# StudioX backend. `make run` starts the whole stack on http://localhost:$(PORT); `make test` runs every test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | cksum | cut -d' ' -f1)
PROTOS := $(shell find protos -name '*.proto')
BUF_VERSION := 1.75.0
# The REST contract (docs/openapi.json): Redocly CLI lints it, the TypeScript client is built from it,
# and the gateway serves Redoc's standalone bundle (vendored from npm by `make vendor-redoc`).
REDOCLY_VERSION := 2.77.0
REDOC_VERSION := 2.5.4
TS_CLIENT := clients/typescript

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

# Regenerate the committed Python code (gen/), the OpenAPI document (docs/openapi.json) and the
# TypeScript client's types after editing protos/; `make check` fails on drift.
gen: $(STAMP) $(TS_CLIENT)/node_modules/.package-lock.json
	$(PY) scripts/codegen.py --python --descriptor
	$(PY) scripts/openapi.py
	cd $(TS_CLIENT) && npx --no-install openapi-typescript ../../docs/openapi.json --output src/schema.d.ts

build/api.pb: $(STAMP) $(PROTOS) scripts/codegen.py
	$(PY) scripts/codegen.py --descriptor

# A process per service per two cores behind Envoy (SERVICE_WORKERS=N make run to choose; the
# scheduler's processes elect one leader).
run: build/api.pb
	@if [ -n "$(OBSERVE)" ]; then $(MAKE) --no-print-directory prometheus; fi
	$(BIN)/studiox dev run

test: build/api.pb chromium
	$(BIN)/pytest -q

test-unit: build/api.pb
	$(BIN)/pytest -q tests/unit

test-integration: build/api.pb
	$(BIN)/pytest -q tests/integration

test-e2e: build/api.pb chromium
	$(BIN)/pytest -q tests/e2e

# Schemathesis against the live stack for longer than `make test`'s bounded run (a few minutes);
# writes its figures into docs/RELIABILITY.md.
.PHONY: fuzz
fuzz: build/api.pb
	STUDIOX_FUZZ=long $(BIN)/pytest -q -s tests/e2e/test_openapi_fuzz.py

# Debian's chromium for the browser tests (API reference page; local checkout page, driven by
# tests/support/browser.py), installed when missing: CI machines start clean.
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# Benchmarks, soak and chaos (several minutes; installs Debian's wrk and hey when missing: closed
# loop throughput, open loop latency at a fixed rate). Writes docs/PERFORMANCE.md and
# docs/RELIABILITY.md.
bench: build/api.pb
	$(BIN)/pytest -q -m bench -s tests/bench/test_throughput.py \
		tests/bench/test_reset_scale.py tests/bench/test_reliability.py

check: lint typecheck buflint gen-check validate-deploy check-observability openapi-check ts-check

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

# Deployment files checked without Docker or a cluster, by the real tools (`docker compose config`,
# kubernetes-validate, `envoy --mode validate`), then against the code (docs/DEPLOY.md).
.PHONY: validate-deploy
validate-deploy: build/api.pb
	$(PY) scripts/validate_deploy.py

# Alert/recording rules checked and unit-tested with promtool; every metric the rules and the
# Grafana dashboard query must be exported by the code, Envoy or the process collector
# (docs/OPERATIONS.md). OBSERVE=1 make run starts the same Prometheus against the local stack.
.PHONY: check-observability prometheus
check-observability: build/api.pb prometheus
	promtool check rules deploy/prometheus/rules.yml
	promtool test rules deploy/prometheus/rules_test.yml
	$(PY) scripts/check_observability.py

# Debian's prometheus package (prometheus + promtool), installed when missing: CI machines start
# clean. Its service is not started (nothing here runs it but OBSERVE=1 make run).
prometheus:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends prometheus >/dev/null; }

# The OpenAPI document is what the protos produce, valid OpenAPI 3.1 (openapi-spec-validator) and
# clean under Redocly's strictest ruleset (docs/redocly.yaml).
.PHONY: openapi-check ts-check vendor-redoc
openapi-check: build/api.pb
	$(PY) scripts/openapi.py --check
	$(BIN)/openapi-spec-validator docs/openapi.json
	npx --yes @redocly/cli@$(REDOCLY_VERSION) lint --config docs/redocly.yaml docs/openapi.json

# The TypeScript client: its types are what the document produces, and it type-checks.
ts-check: $(TS_CLIENT)/node_modules/.package-lock.json
	cd $(TS_CLIENT) && npx --no-install openapi-typescript ../../docs/openapi.json \
		--output node_modules/.cache/schema.d.ts >/dev/null
	@cmp -s $(TS_CLIENT)/node_modules/.cache/schema.d.ts $(TS_CLIENT)/src/schema.d.ts || { \
		echo "$(TS_CLIENT)/src/schema.d.ts is stale; run \`make gen\` and commit it"; exit 1; }
	cd $(TS_CLIENT) && npx --no-install tsc --noEmit

$(TS_CLIENT)/node_modules/.package-lock.json: $(TS_CLIENT)/package-lock.json
	cd $(TS_CLIENT) && npm ci --no-audit --no-fund

# Redoc's standalone bundle for GET /docs, from npm (committed; rerun to upgrade REDOC_VERSION).
vendor-redoc:
	rm -rf build/redoc && mkdir -p build/redoc
	cd build/redoc && npm pack --silent redoc@$(REDOC_VERSION) >/dev/null && tar xzf redoc-$(REDOC_VERSION).tgz
	grep -v '^//# sourceMappingURL=' build/redoc/package/bundles/redoc.standalone.js \
		> gateway/docs/redoc.standalone.js
	cat build/redoc/package/LICENSE build/redoc/package/bundles/redoc.standalone.js.LICENSE.txt \
		> gateway/docs/redoc.standalone.js.LICENSE.txt

# Re-pin every dependency from requirements.in (needs network).
lock:
	rm -rf .lockvenv && $(PYTHON) -m venv .lockvenv
	.lockvenv/bin/pip install -q -r requirements.in setuptools
	.lockvenv/bin/pip freeze --exclude-editable | sort -f > requirements.lock
	rm -rf .lockvenv

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
