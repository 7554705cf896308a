# Debrief — `make run` serves the demo, `make test` runs the whole suite.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
WANTED := $(shell cat .python-version 2>/dev/null)

# The Python that .python-version names, else any python3 >= 3.12 on the PATH.
define find_python
for candidate in python$(WANTED) python3.13 python3.12 python3 python; do \
  if command -v $$candidate >/dev/null 2>&1 && \
     $$candidate -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then \
    echo $$candidate; exit 0; fi; \
done; exit 1
endef

.PHONY: run serve test lint format bench clean

$(PY):
	@python=$$($(find_python)) || { echo "Debrief needs Python 3.12 or newer (3.13 preferred): none found on the PATH." >&2; exit 1; }; \
	echo "Creating $(VENV) with $$($$python --version)"; \
	$$python -m venv $(VENV)

$(VENV)/.installed-run: pyproject.toml | $(PY)
	$(PIP) install -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PIP) install -e '.[test]'
	@touch $@ $(VENV)/.installed-run

run: export DJANGO_DEBUG ?= 1
run: $(VENV)/.installed-run
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py demo_login
	$(PY) manage.py runserver 127.0.0.1:8000

# Production mode: gunicorn with DEBUG off. Needs DJANGO_SECRET_KEY (and DJANGO_ALLOWED_HOSTS,
# DATABASE_URL for a real deployment); see "Deploying" in the README.
serve: $(VENV)/.installed-run
	$(PY) manage.py check --deploy --fail-level WARNING
	$(PY) manage.py migrate --no-input -v 0
	$(PY) manage.py collectstatic --no-input -v 0
	exec $(VENV)/bin/gunicorn --config config/gunicorn.py config.wsgi

test: export DJANGO_DEBUG ?= 1
test: $(VENV)/.installed-test
	$(PY) manage.py makemigrations --check --dry-run -v 0
	$(PY) -m pytest -n 2 $(PYTEST_ARGS)

# The page benchmark on SQLite (DATABASE_URL=postgres://… for PostgreSQL), then the load test.
bench: $(VENV)/.installed-run
	$(PY) bench/pages.py
	$(PY) bench/load.py

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed-test
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) var/staticfiles .pytest_cache
