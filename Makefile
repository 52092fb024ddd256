# edgex.sysmgmt — the two commands that matter are `make demo` and `make test`.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eu -o pipefail -c

REPO        := $(CURDIR)
VENV        ?= $(REPO)/.venv
PY          := $(VENV)/bin/python
# galaxy-importer pins older ansible-lint and attrs: it lives in a venv of its own.
GALAXY_VENV ?= $(REPO)/.venv-galaxy
export EDGEX_GALAXY_VENV := $(GALAXY_VENV)
COLLECTIONS := $(REPO)/.collections
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS):$(VENV)/lib/python3.11/site-packages
export PATH := $(VENV)/bin:$(PATH)
export PYTHONWARNINGS := ignore::DeprecationWarning:consul.base
# Every docker-marked test must run under make: no engine is a failure, not a skip.
export EDGEX_REQUIRE_DOCKER := 1

.PHONY: help deps venv collection-link engine image testbed-up testbed-down fleet-up fleet-down \
        test unit integration pyconsul sanity lint molecule demo build bench clean \
        ee awx galaxy galaxy-venv changelog

help:
	@echo "make demo          set up and show the main job on the local test-bed"
	@echo "make test          install everything, run every test, leave nothing running"
	@echo "make testbed-down  stop everything the test-bed or the demo started"
	@echo "make ee / awx / galaxy   execution environment, AWX kit, release tarball (all part of make test)"
	@echo "make fleet-up N=1000 / make fleet-down   a simulated fleet of N gateways on loopback (no Docker)"

# Debian packages (only when root on Debian and something is missing).
deps:
	bash tests/testbed/install-deps.sh

$(VENV)/.installed: requirements.txt meta/ee-requirements.txt meta/gateway-requirements.txt tests/requirements.txt
	python3 -m venv $(VENV)
	# pip.conf on these machines lists local indexes that may be empty: drop those notices only.
	$(VENV)/bin/pip install -q --upgrade pip 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	$(VENV)/bin/pip install -q -r tests/requirements.txt 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	touch $@

venv: $(VENV)/.installed

$(GALAXY_VENV)/.installed: tests/galaxy/requirements.txt
	python3 -m venv $(GALAXY_VENV)
	$(GALAXY_VENV)/bin/pip install -q --upgrade pip 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	$(GALAXY_VENV)/bin/pip install -q -r tests/galaxy/requirements.txt 2>&1 | { grep -v 'is ignored: it is neither' || true; }
	touch $@

galaxy-venv: $(GALAXY_VENV)/.installed

# The collection must be importable as ansible_collections.edgex.sysmgmt.
collection-link:
	mkdir -p $(COLLECTIONS)/ansible_collections/edgex
	ln -sfn $(REPO) $(COLLECTIONS)/ansible_collections/edgex/sysmgmt

engine: deps
	bash tests/testbed/docker-engine.sh

image: engine venv
	$(PY) tests/testbed/testbed.py image
	$(PY) tests/testbed/images.py systemd >/dev/null
	$(PY) tests/testbed/images.py compose-gateway >/dev/null

testbed-up: venv collection-link image
	$(PY) tests/testbed/testbed.py up

testbed-down:
	if [ -x $(PY) ]; then $(PY) tests/testbed/testbed.py down; fi

# A simulated fleet (tests/testbed/fleet.py): N gateways x 12 EdgeX services on 127.10.0.1...,
# the Consul emulator seeded with them, inventories in fleet-state/. FLEET_ARGS: e.g. --hung 0.1.
N ?= 1000
fleet-up: venv collection-link
	# one descriptor per listening service, plus open connections: 12,000 for 1,000 gateways
	want=$$(( $(N) * 12 + 4096 )); hard=$$(ulimit -Hn)
	if [ "$$hard" != unlimited ] && [ "$$hard" -lt "$$want" ]; then
	  ulimit -Hn "$$want" 2>/dev/null || { echo "fleet-up: $$want file descriptors needed, the hard limit is $$hard (raise it as root)"; exit 1; }
	fi
	ulimit -n "$$want"
	$(PY) tests/testbed/fleet.py up --gateways $(N) $(FLEET_ARGS)

fleet-down:
	if [ -x $(PY) ]; then $(PY) tests/testbed/fleet.py down; fi

unit: venv collection-link
	$(PY) -m pytest tests/unit

integration: venv collection-link image
	trap '$(PY) tests/testbed/testbed.py down' EXIT
	$(PY) -m pytest tests/integration

pyconsul: venv collection-link
	bash tests/pyconsul.sh

sanity: venv
	bash tests/sanity/run.sh

lint: venv collection-link
	bash tests/lint.sh

molecule: venv collection-link image
	bash tests/molecule.sh

# The execution environment: built from extensions/ee/ with ansible-builder (cached by content
# hash), then the health playbook run in it by ansible-runner's container mode on the test-bed.
ee: venv collection-link image
	trap '$(PY) tests/testbed/testbed.py down' EXIT
	$(PY) -m pytest tests/ee

# extensions/awx: syntax, the credential type's injectors, the surveys (no AWX server here).
awx: venv collection-link
	$(PY) -m pytest tests/awx

# Fold the changelog fragments into the release VERSION (galaxy.yml's by default; an existing
# release takes the new fragments in) and write CHANGELOG.rst.
VERSION ?= $(shell sed -n 's/^version: *//p' galaxy.yml)
changelog: venv collection-link
	cd $(COLLECTIONS)/ansible_collections/edgex/sysmgmt && antsibull-changelog release --version $(VERSION)

# The release tarball: its content, galaxy-importer, ansible-test sanity and units installed from it.
galaxy: venv collection-link galaxy-venv
	$(PY) -m pytest tests/galaxy

# One pytest run for everything pytest drives: unit, integration, and what `make awx`, `make ee`
# and `make galaxy` run on their own.
test: deps venv collection-link image galaxy-venv
	trap '$(PY) tests/testbed/testbed.py down' EXIT
	$(PY) -m pytest tests/unit tests/integration tests/awx tests/ee tests/galaxy
	bash tests/pyconsul.sh
	bash tests/sanity/run.sh
	bash tests/lint.sh
	bash tests/molecule.sh

demo: deps venv collection-link image
	bash demo/run.sh

build: venv
	ansible-galaxy collection build --force --output-path $(REPO)/.collections

bench: venv collection-link image
	bash bench/run.sh

clean: testbed-down
	rm -rf $(VENV) $(GALAXY_VENV) $(REPO)/.venv-pyconsul $(COLLECTIONS) .pytest_cache tests/output bench/out
