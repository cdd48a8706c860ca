# TeleKOL: `make demo` runs the platform, `make test` runs every check.
# Both install what a fresh Debian/Ubuntu machine lacks (system packages need root or sudo).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
MO := clinician_ui/translations/da/LC_MESSAGES/messages.mo

.PHONY: demo test install system-packages browser-packages lint typecheck unit bench translations extract-messages clean

demo: install
	$(BIN)/telekol demo

test: install browser-packages
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory typecheck
	$(BIN)/pytest

install: system-packages $(STAMP) $(MO)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "TeleKOL needs Python 3.11 or newer"'
	@$(PYTHON) -m venv --help >/dev/null 2>&1 || $(SUDO) apt-get install -y python3-venv
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Mosquitto (broker and the mosquitto_pub/sub clients) from the distribution.
system-packages:
	@if ! command -v mosquitto >/dev/null 2>&1 && [ ! -x /usr/sbin/mosquitto ] || ! command -v mosquitto_pub >/dev/null 2>&1; then \
		echo "Installing mosquitto and mosquitto-clients"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq mosquitto mosquitto-clients; \
	fi

# Debian's Chromium for the browser tests (Playwright drives it; no browser download).
browser-packages:
	@if ! command -v chromium >/dev/null 2>&1; then \
		echo "Installing chromium"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; \
	fi

clinician_ui/translations/%/LC_MESSAGES/messages.mo: clinician_ui/translations/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile --use-fuzzy -d clinician_ui/translations -l $* -i $< -o $@

translations: $(MO)

# Re-extract translatable strings after changing templates or views, then translate the .po files.
extract-messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_pgettext:1c,2 -o clinician_ui/translations/messages.pot .
	$(BIN)/pybabel update -i clinician_ui/translations/messages.pot -d clinician_ui/translations

lint: install
	$(BIN)/ruff check .

typecheck: install
	@mkdir -p $(VENV)/typecheck/telekol
	@for d in server device_gateway clinician_ui fhir; do ln -sfn ../../../$$d $(VENV)/typecheck/telekol/$$d; done
	MYPYPATH=$(VENV)/typecheck $(BIN)/mypy -p telekol

unit: install
	$(BIN)/pytest -m "not integration and not browser"

bench: install
	$(BIN)/telekol bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache $(MO)
