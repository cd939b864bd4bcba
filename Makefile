# The two commands of the README:
#   make run   - install what is missing, start the embedded PostGIS, migrate, load the demo
#                once and serve on http://127.0.0.1:8000 (Ctrl-C stops the web server)
#   make test  - install the same plus test tools, then lint and run the whole suite
PYTHON ?= python3
VENV ?= .venv
# pytest-xdist workers for `make test`: one per core (its servers are threads of one process,
# which keeps one core busy); `make test WORKERS=0` runs the suite in this one process.
WORKERS ?= logical
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
WEB_STAMP := web/node_modules/.installed

.PHONY: run test setup setup-test lint format pg-stop clean

run: setup
	$(BIN)/gis-service serve

test: setup-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -n $(WORKERS)

setup: $(STAMP)
	@scripts/system-deps.sh run
	@$(MAKE) --no-print-directory $(WEB_STAMP)

setup-test: $(STAMP)
	@scripts/system-deps.sh test
	@$(MAKE) --no-print-directory $(WEB_STAMP)

# The web map's browser libraries (Leaflet and plugins, Font Awesome), pinned by
# web/package-lock.json and served by the service itself; reinstalled only when it changes.
$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	@touch $(WEB_STAMP)

# Reinstall the virtualenv only when the project's dependencies changed.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "needs $(PYTHON) (3.11+): apt-get install python3 python3-venv" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	@touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

pg-stop: $(STAMP)
	$(BIN)/gis-service pg stop

clean: pg-stop
	rm -rf var
