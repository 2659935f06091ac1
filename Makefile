# The README's two commands: `make run` (server on embedded defaults) and `make test` (the whole suite).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install lint run test test-docker images up down bench clean

# The optional browser-use engine (about 360 MB, a minute) is not part of `make run`: install it with
# `BCTRL_INSTALL_BROWSER_USE=1 make install` or `.venv/bin/bctrl-server agents install`, now or later.
# Where BCTRL_BROWSER_USE_VENV names its place (CI keeps it there between runs, .ci/run), it is installed
# by default, once: an install that is there already costs a second.
BCTRL_INSTALL_BROWSER_USE ?= $(if $(BCTRL_BROWSER_USE_VENV),1,0)

install: $(VENV)/.installed
ifeq ($(BCTRL_INSTALL_BROWSER_USE),1)
	@$(BIN)/bctrl-server agents install || echo "browser-use could not be installed (browserUse invocations will say so); retry: $(BIN)/bctrl-server agents install" >&2
endif

# Each step says what it does, how big and how long before it starts; pip shows its own progress.
$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { echo "Python venv support is missing: sudo apt-get install python3-venv" >&2; exit 1; }
	@echo "==> [1/3] Creating the virtualenv $(VENV) (seconds)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> [2/3] Updating pip in it (about 2 MB, seconds)"
	$(BIN)/pip install --disable-pip-version-check --upgrade pip
	@echo "==> [3/3] Installing bctrl-server, its dependencies and the test tools into $(VENV)"
	@echo "    (about 120 packages, 670 MB on disk; under a minute on a fast connection)"
	$(BIN)/pip install --disable-pip-version-check -e '.[test]'
	@touch $@

# Serves in the foreground; the banner says where the console and the docs are once the server listens.
run: install
	@scripts/ensure-chromium.sh
	@echo "==> Starting bctrl-server (Ctrl+C stops it)"
	$(BIN)/bctrl-server serve

# Lint, format and the import layering (CONVENTIONS.md): seconds, so they run before the tests.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# Three runs side by side, balanced by what a CI run measured (both cores are busy throughout): the
# bounded fuzz run (its own server, 11-15 minutes), the SDK, e2e, webhook, drain, fault and MCP tiers
# (their own servers and backends), and the rest, whose output streams; the other two logs follow it.
FUZZ = tests/api/test_schema_fuzz.py
SHARD = tests/e2e tests/current tests/webhooks tests/drains tests/faults tests/mcp
test: install lint tests/e2e/js/node_modules
	@scripts/ensure-chromium.sh
	@scripts/ensure-services.sh
	@fuzz_log=$$(mktemp /tmp/bctrl-fuzz.XXXXXX.log); shard_log=$$(mktemp /tmp/bctrl-shard.XXXXXX.log); \
	$(BIN)/pytest -m "not docker" $(FUZZ) >"$$fuzz_log" 2>&1 & fuzz=$$!; \
	$(BIN)/pytest -m "not docker" $(SHARD) >"$$shard_log" 2>&1 & shard=$$!; \
	$(BIN)/pytest -m "not docker" --ignore=$(FUZZ) $(addprefix --ignore=,$(SHARD)); main=$$?; \
	wait $$shard; sharded=$$?; echo "--- $(SHARD) (run beside the rest):"; cat "$$shard_log"; \
	wait $$fuzz; fuzzed=$$?; echo "--- $(FUZZ) (run beside the rest):"; cat "$$fuzz_log"; \
	rm -f "$$fuzz_log" "$$shard_log"; \
	[ $$main -eq 0 ] && [ $$sharded -eq 0 ] && [ $$fuzzed -eq 0 ]

# The Docker tier: starts an engine when none answers, builds the images (cached), runs tests/docker.
test-docker: install images
	@scripts/ensure-services.sh
	@scripts/ensure-nginx.sh
	$(BIN)/pytest -m docker tests/docker

images:
	@scripts/ensure-docker.sh

# The compose deployment (README "Deploy with Docker"); BCTRL_API_KEY must be set.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
up:
	$(COMPOSE) up -d --build

# Browser containers are not compose services (the API launches them): remove them first, or the
# network they are on cannot be removed.
down:
	@ids=$$(docker ps -aq --filter label=io.bctrl.runtime); [ -z "$$ids" ] || docker rm -f $$ids >/dev/null
	$(COMPOSE) down

# Puppeteer for the e2e tests: puppeteer-core only, so nothing downloads a browser.
tests/e2e/js/node_modules: tests/e2e/js/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "npm is missing: sudo apt-get install npm" >&2; exit 1; }
	cd tests/e2e/js && npm ci --silent --no-audit --no-fund
	@touch $@

bench: install
	@scripts/ensure-chromium.sh
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache
