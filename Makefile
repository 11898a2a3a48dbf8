# The two commands of the README: `make run` starts the app, `make test` runs the tests.
# Both create the virtual environment (.venv) on first use; later runs reuse it.
PY ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test env browser

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

env: $(STAMP)

run: env
	$(VENV)/bin/python app.py

# Debian's Chromium for the browser tests (Playwright's own browser download fails offline).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || echo "chromium not installed: browser tests will skip"

test: env browser
	$(VENV)/bin/ruff check rschat tests app.py scripts
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q
