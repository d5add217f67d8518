# phenoflow — the two commands a new user needs: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# Two install levels: the runtime (what `make demo` needs) and everything (tests, lint, training).
RUNTIME := $(VENV)/.runtime
STAMP   := $(VENV)/.installed

.PHONY: install install-runtime demo test test-fast lint bench system-deps clean

install: $(STAMP)
install-runtime: $(RUNTIME)

$(RUNTIME): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(RUNTIME)

# torch==2.13.0 (the `train` extra) resolves to the CPU build on this machine kind.
$(STAMP): $(RUNTIME)
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

demo: install-runtime
	$(VENV)/bin/phenoflow demo

# ruff: pyflakes, bugbear, isort, docstrings of public names (config in pyproject.toml).
# mypy cannot see setuptools' package-dir mapping (flows/ is phenoflow.flows, ...; the editable
# install maps it with an import hook mypy does not run), so build/mypy/phenoflow/ mirrors the
# package with symlinks (phenoflow/* plus the top-level folders) and mypy, whose mypy_path is
# build/mypy (pyproject.toml), checks the whole package there by module name.
lint: install
	$(VENV)/bin/ruff check .
	rm -rf build/mypy && mkdir -p build/mypy/phenoflow
	cd build/mypy/phenoflow && ln -s ../../../phenoflow/* . && ln -s ../../../flows ../../../operators ../../../connectors ../../../models .
	$(VENV)/bin/mypy -p phenoflow

test: install system-deps lint
	$(PY) -m pytest -q

test-fast: install
	$(PY) -m pytest -q -m "not slow"

bench: install
	for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
