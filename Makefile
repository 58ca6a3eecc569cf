# The two commands of the README:  make demo  (run the system with demo data)  and  make test.
# make test-fast: the inner loop (SQLite, no browser, no install of Chromium or axe-core, no lint).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1:8000
CHROMIUM ?= $(shell command -v chromium 2>/dev/null || echo /usr/bin/chromium)
# axe-core (accessibility rules run by the browser tests), from the npm registry, into the venv.
AXE_VERSION := 4.14.1
AXE_DIR := $(VENV)/axe
AXE := $(AXE_DIR)/node_modules/axe-core/axe.min.js
# pytest-xdist: a worker per core, each with its own test database and Redis database
# (tests/builders/workers.py); worksteal: a worker whose tests are done takes some of another's.
# The order is random: pytest-randomly prints the seed, `--randomly-seed=N` repeats an order,
# `-p no:randomly` turns it off.
XDIST ?= -n auto --dist worksteal
FAST_MARKERS := not browser and not postgres and not redis
# Bytecode is written even where the environment says not to (PYTHONDONTWRITEBYTECODE): the test
# workers and the servers they start import the same modules, compiled once rather than per process.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install demo test test-fast lint check browser worker beat clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# --no-compile: Python compiles what it imports when it first imports it, not every module.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --skip-if-seeded --demo-passwords
	@echo "Open http://$(HOST)/ (site forms) and http://$(HOST)/admin/ ; API at http://$(HOST)/api/v1/"
	$(BIN)/python manage.py runserver --insecure $(HOST)

# Headless Chromium for the browser tests, from Debian's packages (Playwright cannot download one),
# and axe-core for their accessibility checks (npm; kept out of git, in the venv).
browser: $(AXE_DIR)/.axe-core-$(AXE_VERSION)
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; \
	  else \
	    echo "Chromium is needed for the browser tests: run 'sudo apt-get install chromium'."; exit 1; \
	  fi; \
	fi

$(AXE_DIR)/.axe-core-$(AXE_VERSION): | $(BIN)/python
	@command -v npm >/dev/null || { echo "npm is needed for axe-core (browser tests): install Node.js."; exit 1; }
	npm install --silent --no-save --no-package-lock --no-audit --no-fund --prefix $(AXE_DIR) axe-core@$(AXE_VERSION)
	touch $@

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python manage.py makemigrations --check --dry-run

test: install browser lint
	EDC_CHROMIUM=$(CHROMIUM) EDC_AXE_CORE=$(AXE) $(BIN)/pytest $(XDIST)

# SQLite whatever DATABASE_URL says, the test database made from the models (tests/conftest.py).
test-fast: install
	env -u DATABASE_URL $(BIN)/pytest $(XDIST) --schema-from-models -m "$(FAST_MARKERS)"

# The Celery worker with the beat scheduler embedded (the nightly edit-check sweep): one command.
worker: install
	$(BIN)/celery -A edc worker --beat --loglevel=info

# Beat alone, for a deployment that runs several workers.
beat: install
	$(BIN)/celery -A edc beat --loglevel=info

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
