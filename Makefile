# Two commands do everything: `make run` (the embedded demo) and `make test` (the whole suite).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test test-faults lint fmt clean bench

$(VENV)/.installed-run: requirements.txt
	@test -x $(PY) || $(shell command -v $(PYTHON) || echo python3) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt
	@test -x $(PY) || $(shell command -v $(PYTHON) || echo python3) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@ $(VENV)/.installed-run

## The embedded default: SQLite under var/, filesystem broker, demo data; no server to install.
run: $(VENV)/.installed-run
	env -u DATABASE_URL -u REDIS_URL EMBEDDED=true $(PY) manage.py run_embedded

## The whole suite against PostgreSQL and Redis (standard local ports, or DATABASE_URL / REDIS_URL).
test: $(VENV)/.installed-dev
	@$(PY) bin/check-services
	$(PY) -m pytest $(PYTEST_ARGS)

## The fault tests alone (they are part of `make test` too): a private PostgreSQL restarted and a
## private Redis stopped under writes, workers SIGKILLed mid-send, two beats at once.
test-faults: $(VENV)/.installed-dev
	@$(PY) bin/check-services
	$(PY) -m pytest -m "faults or integration" $(PYTEST_ARGS)

lint: $(VENV)/.installed-dev
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

fmt: $(VENV)/.installed-dev
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf var/

## SPEC §5's write budgets on PostgreSQL behind gunicorn (bench/README.md): its own database
## interlude_bench and Redis db 6; the report lands in var/bench/. BENCH_ARGS=--quick for a short run.
bench: $(VENV)/.installed-dev
	@$(PY) bin/check-services
	$(PY) -m bench.run $(BENCH_ARGS)
