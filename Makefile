# The two commands a user needs: `make demo` and `make test`. Both create .venv through `make install`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
export DO_NOT_TRACK := 1
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: install demo test test-fast lint bench clean

install: $(BIN)/ecgmon

$(BIN)/ecgmon: pyproject.toml requirements/lock.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	$(BIN)/uv pip install -q --python $(BIN)/python -r requirements/lock.txt
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	touch $@

demo: install
	$(BIN)/ecgmon demo

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

# ruff on the real folders (flows/, tasks/, models/ are linked into ecgmon/ and read once), then
# the import contracts of pyproject.toml ([tool.importlinter]).
lint: install
	$(BIN)/ruff check ecgmon models tasks flows tests benchmarks
	$(BIN)/ruff format --check ecgmon models tasks flows tests benchmarks
	$(BIN)/lint-imports

# Throughput benchmark (docs/performance.md). BENCH_ROWS beats; PostgreSQL too when
# ECGMON_BENCH_POSTGRES_URL names an empty database (it gets tables scores, naive_scores, ...).
BENCH_ROWS ?= 1000000
bench: install
	mkdir -p var && rm -f var/bench.db var/bench.db-wal var/bench.db-shm
	$(BIN)/python benchmarks/score_throughput.py --rows $(BENCH_ROWS) --database-url "sqlite:///$(CURDIR)/var/bench.db" --json
	@if [ -n "$$ECGMON_BENCH_POSTGRES_URL" ]; then \
	  $(BIN)/python benchmarks/score_throughput.py --rows $(BENCH_ROWS) --database-url "$$ECGMON_BENCH_POSTGRES_URL" --json; fi

clean:
	rm -rf $(VENV) var .pytest_cache
