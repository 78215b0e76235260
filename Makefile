# Two commands matter: `make run` (dev service on SQLite) and `make test` (everything).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install install-js run reset test lint typecheck lint-lua test-clocks bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

run: install
	scripts/dev-run

# The demo data of `make run`, calls included, back as new (data/ and its secrets stay).
reset: install
	scripts/dev-run reset

# clients/js's dev dependencies (typescript, from package-lock.json) for its type check.
install-js:
	cd clients/js && npm ci --no-audit --no-fund

lint: install
	$(BIN)/ruff check service tests bench
	$(BIN)/ruff format --check service tests bench

typecheck: install
	$(BIN)/mypy

lint-lua:
	@if command -v luacheck >/dev/null; then luacheck prosody tests/prosody; \
	elif [ -n "$$CI" ]; then echo "luacheck missing (apt-get install lua-check)"; exit 1; \
	else echo "luacheck not installed: skipping Lua lint (CI runs it)"; fi

test: install lint typecheck lint-lua
	$(BIN)/python -m pytest -q
	$(MAKE) test-clocks

# unit, api and e2e again on moved clocks (faketime): no test may depend on the day it runs.
test-clocks: install
	scripts/test-clocks

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
