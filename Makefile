# The only commands anyone needs: `make run` and `make test` (see README.md).
SHELL := /bin/bash
# The virtualenv's interpreter: the operating system's own CPython when it is 3.11 or newer
# (distributions build it with profile-guided and link-time optimization, as the official
# Docker images are built; an unoptimized source build spends about 8 % more CPU per API
# request here), else python3 from PATH. `make PYTHON=... venv` chooses another.
PYTHON ?= $(shell for p in /usr/bin/python3 python3; do \
	"$$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && { echo "$$p"; break; }; \
	done)
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: run test test-fast venv fmt lint typecheck migrations migrate worker beat bench bench-deps up down stop browser-deps

$(VENV)/.installed: requirements/base.txt requirements/dev.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); python3 -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	@touch $@

venv: $(VENV)/.installed

run: venv
	PORT=$(PORT) $(PY) -m wallet_project.launcher run

stop: venv
	$(PY) -m wallet_project.launcher stop

browser-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			echo "[wallet] installing chromium and chromium-driver for the browser tests"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
				|| echo "[wallet] chromium could not be installed: browser tests will be skipped"; \
		fi; \
	fi

test: venv browser-deps
	@eval "$$($(PY) -m wallet_project.launcher env --mode test)" && \
	$(VENV)/bin/ruff check . && \
	$(VENV)/bin/ruff format --check . && \
	$(VENV)/bin/lint-imports --no-cache --no-logo && \
	$(MAKE) --no-print-directory typecheck && \
	$(PY) manage.py makemigrations --check --dry-run && \
	$(VENV)/bin/pytest --create-db $(PYTEST_ARGS)

test-fast: venv
	@eval "$$($(PY) -m wallet_project.launcher env --mode test)" && \
	$(VENV)/bin/pytest -m "not concurrency and not celery_worker and not browser" $(PYTEST_ARGS)

fmt: venv
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

lint: venv
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports --no-cache --no-logo

# What mypy checks, and how, is in pyproject.toml ([tool.mypy]).
typecheck: venv
	$(VENV)/bin/mypy

migrations: venv
	@eval "$$($(PY) -m wallet_project.launcher env --mode run)" && $(PY) manage.py makemigrations

migrate: venv
	@eval "$$($(PY) -m wallet_project.launcher env --mode run)" && $(PY) manage.py migrate

worker: venv
	@eval "$$($(PY) -m wallet_project.launcher env --mode run)" && \
	$(VENV)/bin/celery -A wallet_project worker -l INFO

beat: venv
	@eval "$$($(PY) -m wallet_project.launcher env --mode run)" && \
	$(VENV)/bin/celery -A wallet_project beat -l INFO

bench-deps:
	@if ! command -v wrk >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "[wallet] installing wrk, the HTTP load generator of the benchmark"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) \
			|| echo "[wallet] wrk could not be installed: the HTTP benchmark uses its Python client"; \
	fi

bench: venv bench-deps
	@eval "$$($(PY) -m wallet_project.launcher env --mode test)" && $(PY) bench/run.py

up:
	docker compose -f docker/docker-compose.yml up -d --build

down:
	docker compose -f docker/docker-compose.yml down
