# Two commands matter: `make run` (dev service on SQLite) and `make test` (everything).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install install-js lock image test-image run reset test lint typecheck lint-lua test-clocks bench clean

install: $(VENV)/.installed

# Exactly the locked versions, every file checked against its sha256 (requirements/, written by
# `make lock`); then the project itself, editable, with nothing more resolved.
$(VENV)/.installed: pyproject.toml requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/build.txt
	$(BIN)/python -m pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@$(BIN)/python scripts/lock --check || echo "make install: run 'make lock' (tests/deploy/test_locks.py fails until then)"
	touch $@

# Re-resolve requirements/*.txt from pyproject.toml, keeping every pin that still fits; from
# PyPI, or from uv's cache when no index answers. UPGRADE="name ..." moves those packages to
# their newest allowed versions, UPGRADE=all moves everything.
lock: install
	$(BIN)/python scripts/lock $(if $(filter all,$(UPGRADE)),--upgrade-all,$(foreach p,$(UPGRADE),--upgrade $(p)))

# The production image (docker/Dockerfile) built on this machine, and checked running.
image:
	scripts/build-image

test-image: install
	scripts/build-image
	$(BIN)/python -m pytest -q tests/image

run: install
	scripts/dev-run

# The demo data of `make run`, calls included, back as new (data/ and its secrets stay).
reset: install
	scripts/dev-run reset

# clients/js's dev dependencies (typescript, from package-lock.json) for its type check.
install-js:
	cd clients/js && npm ci --no-audit --no-fund

lint: install
	$(BIN)/ruff check service tests bench harness
	$(BIN)/ruff format --check service tests bench harness

typecheck: install
	$(BIN)/mypy

lint-lua:
	@if command -v luacheck >/dev/null; then luacheck prosody tests/prosody; \
	elif [ -n "$$CI" ]; then echo "luacheck missing (apt-get install lua-check)"; exit 1; \
	else echo "luacheck not installed: skipping Lua lint (CI runs it)"; fi

test: install lint typecheck lint-lua
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory install-js; \
	else echo "npm not installed: tests/clients skip (CI installs it)"; fi
	$(BIN)/python -m pytest -q
	$(MAKE) test-clocks

# unit, api and e2e again on moved clocks (faketime): no test may depend on the day it runs.
test-clocks: install
	scripts/test-clocks

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
