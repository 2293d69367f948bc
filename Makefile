# Two commands do all the set-up on a fresh machine:
#   make run    virtualenv + dependencies, migrate, demo data and admin account, then the web server
#               and one job worker together (Ctrl-C stops both), serving on
#               127.0.0.1:8000 (make run HOST=0.0.0.0 PORT=8080 to change it)
#   make test   virtualenv + dependencies, the test suite (SQLite, or DATABASE_URL if set)

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint format schema audit clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py createcachetable --verbosity 0
	$(BIN)/python manage.py init_demo --host '$(HOST)' --port '$(PORT)'
	$(BIN)/python manage.py run_all $(HOST):$(PORT)

# Local runs reuse the test database (pytest.ini); CI builds it anew every time.
# axe-core for the browser tests' accessibility checks (tests/live/package.json), installed once when
# missing and npm is there (`npm ci --prefix tests/live` after changing its version).
tests/live/node_modules/axe-core/axe.min.js:
	-command -v npm >/dev/null && npm ci --prefix tests/live --no-audit --no-fund

test: $(VENV)/.dev | tests/live/node_modules/axe-core/axe.min.js
	$(BIN)/pytest $(if $(CI),--create-db) $(PYTEST_ARGS)

# The committed OpenAPI contract; tests/core/api/test_schema.py fails when it is stale.
schema: $(VENV)/.dev
	$(BIN)/python manage.py spectacular --settings crm_site.settings.test --validate --fail-on-warn --file docs/openapi.yaml

# Known vulnerabilities in the pinned runtime requirements (needs the PyPI vulnerability service).
audit: $(VENV)/.dev
	PIP_AUDIT=$(BIN)/pip-audit bash .ci/audit

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
