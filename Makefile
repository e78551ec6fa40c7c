# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench lint format catalogs browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/yishi demo

# The board's browser tests drive Debian's Chromium (a CJK font for what it shows): installed here
# where the machine lets us (root, with apt); elsewhere those tests skip and say why (on CI they fail).
BROWSER_PACKAGES := chromium chromium-driver fonts-noto-cjk

browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null && fc-list :lang=zh | grep -q .; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing $(BROWSER_PACKAGES) for the browser tests"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null 2>&1 \
		|| { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $(BROWSER_PACKAGES) >/dev/null; } \
		|| echo "$(BROWSER_PACKAGES) could not be installed: the browser tests will say why they do not run"; \
	else echo "$(BROWSER_PACKAGES) are not installed, and cannot be here: the browser tests will skip"; fi

test: $(VENV)/.installed-dev browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

# the board's throughput is measured with wrk (Debian's package), installed where the machine lets us
bench: $(VENV)/.installed-dev
	@command -v wrk >/dev/null \
	|| { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	     && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1; } \
	|| echo "wrk is not installed: the board's requests a second are not measured"
	$(BIN)/python -m bench

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Refresh the message catalogs from the source (the .po files are committed; .mo are built at start-up).
catalogs: $(VENV)/.installed-dev
	$(BIN)/pybabel extract --no-wrap -F babel.cfg -k t -k N_ -k Refused -k notify:4 -k notify_all:4 -k announce:4 -k tell:4 -o locales/messages.pot --no-location --sort-output .
	$(BIN)/pybabel update --no-wrap -i locales/messages.pot -d locales -D messages --no-fuzzy-matching --ignore-obsolete
