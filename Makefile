# The two commands of the README: `make run` starts the app, `make test` runs the tests.
# Both create the virtual environment (.venv) on first use; later runs reuse it.
# `make run` installs lite mode only (no torch, no CUDA libraries); `make test` adds the
# full-mode libraries, Dask (rschat batch) and the test tools, since the tests exercise all.
PY ?= python3
VENV := .venv
SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
LITE := $(VENV)/.installed-lite-$(SUM)
FULL := $(VENV)/.installed-full-$(SUM)

.PHONY: run test env browser

$(VENV)/bin/python:
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

$(LITE): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e .
	rm -f $(VENV)/.installed-lite-*
	touch $(LITE)

$(FULL): pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e '.[train,batch,test]'
	rm -f $(VENV)/.installed-*
	touch $(LITE) $(FULL)

env: $(LITE)

run: env
	$(VENV)/bin/python app.py

# Debian's Chromium for the browser tests (Playwright's own browser download fails offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "chromium not installed: browser tests will skip"

test: $(FULL) browser
	$(VENV)/bin/ruff check rschat tests app.py scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q
