# phenoflow — the two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-fast bench system-deps clean

install: $(STAMP)

# torch==2.13.0 (the `train` extra) resolves to the CPU build on this machine kind.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,train]'
	touch $(STAMP)

# Debian packages the tests need: headless Chromium renders the HTML reports;
# promtool (package prometheus) checks the Prometheus config, alert rules and dashboard queries.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium (report tests)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v promtool >/dev/null 2>&1 || { echo "installing Debian's prometheus (promtool)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    prometheus >/dev/null; }

demo: install
	$(VENV)/bin/phenoflow demo

test: install system-deps
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
