# The README's two commands: `make run` (server on embedded defaults) and `make test` (the whole suite).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install lint run test test-docker images up down bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { echo "Python venv support is missing: sudo apt-get install python3-venv" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@$(BIN)/bctrl-server agents install || echo "browser-use could not be installed (browserUse invocations will say so); retry: $(BIN)/bctrl-server agents install" >&2
	@touch $@

run: install
	@scripts/ensure-chromium.sh
	$(BIN)/bctrl-server serve

# Lint, format and the import layering (CONVENTIONS.md): seconds, so they run before the tests.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: install lint tests/e2e/js/node_modules
	@scripts/ensure-chromium.sh
	@scripts/ensure-services.sh
	$(BIN)/pytest -m "not docker"

# The Docker tier: starts an engine when none answers, builds the images (cached), runs tests/docker.
test-docker: install images
	@scripts/ensure-services.sh
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
