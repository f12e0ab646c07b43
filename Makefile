# The two commands of the README: `make demo` and `make test`. Both set themselves up.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := openssh-server podman runc iproute2 shellcheck git rsync pdsh
PYTHON ?= python3

.PHONY: setup demo test unit lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@bash scripts/install-system-packages.sh $(APT_PACKAGES)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[sim,dev]'
	@touch $(STAMP)

demo: setup
	@PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash scripts/demo.sh

test: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest

unit: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest tests/unit

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/yamllint -s .
	cd $(CURDIR) && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ansible-lint --profile production

clean:
	rm -rf $(VENV) build *.egg-info
