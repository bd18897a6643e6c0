# Two entry points for a fresh machine: `make run` (a real search, no data needed) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PLUGINS := plugins/nasx-nats plugins/nasx-nb101 plugins/nasx-nbnlp plugins/nasx-darts plugins/nasx-proxies plugins/nasx-search plugins/nasx-dask

.PHONY: install run test clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools wheel
	# CPU build of torch; a bare `torch` requirement would pull a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet --no-build-isolation -e '.[test]' $(addprefix -e ,$(PLUGINS))
	touch $@

run: install
	$(BIN)/nasx run --space nats-tss --dataset cifar10 --proxy naswot --proxy logsynflow --proxy skip \
		--search freerea --seed 0 --out results.json

test: install
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV)
