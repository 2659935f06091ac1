# The README's two commands: `make run` (server on embedded defaults) and `make test` (the whole suite).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install run test test-fast bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || { echo "Python venv support is missing: sudo apt-get install python3-venv" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

run: install
	@scripts/ensure-chromium.sh
	$(BIN)/bctrl-server serve

test: install
	@scripts/ensure-chromium.sh
	@scripts/ensure-services.sh
	$(BIN)/pytest

bench: install
	@scripts/ensure-chromium.sh
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data .pytest_cache
