# The two set-up commands: `make run` (embedded default) and `make test` (the whole suite).
UV_VERSION := 0.13.9
UV := .uv/bin/uv
VENV := .venv
PYTEST_ARGS ?=

.PHONY: run test lint install

$(UV):
	python3 -m venv .uv
	.uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(VENV)/.synced: uv.lock pyproject.toml setup.py $(wildcard src/visualdm/*/*.c) | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

install: $(VENV)/.synced

run: $(VENV)/.synced
	$(VENV)/bin/visualdm db upgrade
	$(VENV)/bin/visualdm serve --host 127.0.0.1 --port 8000

# The whole suite: style and types first (they fail in seconds), then every test on two workers.
test: lint
	$(VENV)/bin/pytest -n 2 $(PYTEST_ARGS)

lint: $(VENV)/.synced
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy
