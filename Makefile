# The whole set-up on a fresh machine: `make run` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export LMS_PORT ?= 5000

.PHONY: run test test-sqlite test-postgresql install services translations extract-messages migrate seed bench clean

# --- set-up --------------------------------------------------------------------------
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP) translations

# Compiled catalogs (*.mo) are build output: made from the committed *.po files.
translations: $(STAMP)
	@$(VENV)/bin/pybabel -q compile --use-fuzzy -d lms/translations

# Re-extract the translatable strings (Korean msgids) and update the English catalog.
extract-messages: $(STAMP)
	$(VENV)/bin/pybabel extract -F babel.cfg -k N_ -k _l -o lms/translations/messages.pot .
	$(VENV)/bin/pybabel -q update -N -i lms/translations/messages.pot -d lms/translations

# --- running it ----------------------------------------------------------------------
run: install
	@bash scripts/ensure-services.sh ffmpeg
	@bash scripts/run.sh

migrate: install
	$(VENV)/bin/flask --app wsgi db upgrade

seed: install
	$(VENV)/bin/flask --app wsgi lms seed-demo

# --- tests: the whole suite on SQLite and on PostgreSQL, with real Redis and Chromium --
test: install
	@bash scripts/ensure-services.sh redis postgresql chromium ffmpeg
	@$(MAKE) --no-print-directory test-sqlite test-postgresql

test-sqlite: install
	LMS_TEST_DB=sqlite $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

test-postgresql: install
	LMS_TEST_DB=postgresql $(PY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

# --- benchmarks (figures go to docs/PERFORMANCE.md) -----------------------------------
bench: install
	@bash scripts/ensure-services.sh redis postgresql wrk
	$(PY) bench/bench_me.py
	$(PY) bench/bench_heartbeat.py
	$(PY) bench/bench_settle.py
	$(PY) bench/bench_exam.py
	$(PY) bench/bench_copydetect.py

clean:
	rm -rf $(VENV) instance/*.sqlite3 .pytest_cache
