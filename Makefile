# qrtrace: one command to see it work (make demo), one to prove it (make test).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: demo serve test lint unit embedded api browser distributed bench clean

# The install says one line and is otherwise quiet: pip's progress hidden, its warnings and errors shown.
PIP := $(BIN)/pip --quiet --disable-pip-version-check

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) is required (Python 3.11)"; exit 1; }
	@echo "make: installing qrtrace and its dependencies into $(VENV) ..."
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(PIP) install --upgrade pip
	@$(PIP) install -e '.[test]'
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

demo: $(STAMP)
	$(BIN)/qrtrace demo

serve: $(STAMP)
	$(BIN)/qrtrace serve

# Every tier runs; pytest's "no tests collected" (exit 5) fails the build like any other failure.
test: $(STAMP) lint unit embedded api browser distributed

lint: $(STAMP)
	$(BIN)/ruff check .

unit: $(STAMP)
	$(BIN)/pytest -q -m "not embedded and not distributed and not api and not browser" -p no:cacheprovider

embedded: $(STAMP)
	$(BIN)/pytest -q -m embedded -p no:cacheprovider

# The HTTP API in-process over a chDB demo store: its own run, because chDB is one engine per process.
api: $(STAMP)
	$(BIN)/pytest -q -m api -p no:cacheprovider

# The console in Debian's headless Chromium (installed by infra/browser/install.sh); screenshots in test-artifacts/.
browser: $(STAMP)
	bash infra/browser/install.sh
	$(BIN)/pytest -q -m browser -p no:cacheprovider

# Real Kafka (KRaft, jars from Maven Central) and a ClickHouse server (Debian package), started by infra/.
distributed: $(STAMP)
	$(BIN)/pytest -q -m distributed -p no:cacheprovider

bench: $(STAMP)
	$(BIN)/python benchmarks/ingest_bench.py

clean:
	rm -rf $(VENV) .qrtrace test-artifacts build *.egg-info
