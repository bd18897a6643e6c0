# Two entry points for a fresh machine: `make run` (a real search, no data needed) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS := plugins/nasx-nats plugins/nasx-nb101 plugins/nasx-nbnlp plugins/nasx-darts plugins/nasx-proxies plugins/nasx-search plugins/nasx-dask plugins/nasx-optuna plugins/nasx-mobile

CHECK_VENV ?= /tmp/nasx-wheel-check

.PHONY: install run test wheels wheel-check clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	# CPU build of torch; a bare `torch` requirement would pull a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet --no-build-isolation -e '.[test,export]' $(addprefix -e ,$(PLUGINS))
	touch $@

run: install
	$(BIN)/nasx run --space nats-tss --dataset cifar10 --proxy naswot --proxy logsynflow --proxy skip \
		--search freerea --seed 0 --out results.json

test: install
	$(BIN)/python -m pytest -q

# one wheel per distribution (the core and every plugin) in dist/
wheels: install
	rm -rf dist
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir dist . $(PLUGINS)

# the wheels alone, in a fresh environment without editable installs: every component loads, a search runs
wheel-check: wheels
	rm -rf $(CHECK_VENV)
	$(PYTHON) -m venv $(CHECK_VENV)
	$(CHECK_VENV)/bin/python -m pip install --quiet torch==2.13.0
	$(CHECK_VENV)/bin/python -m pip install --quiet --find-links dist 'nasx[all]'
	cd $(CHECK_VENV) && bin/nasx plugins --json > plugins.json && bin/python -c "import json, sys; \
		rows = json.load(open('plugins.json')); bad = [r for r in rows if r['status'] != 'ok']; \
		print(len(rows), 'components'); sys.exit(f'not ok: {bad}' if bad or len(rows) < 40 else 0)"
	cd $(CHECK_VENV) && bin/nasx run --proxy freerea -o repeats=1 --max-evals 3 --no-cache --quiet

clean:
	rm -rf $(VENV) dist
