# AlphaNet Zoo — the two commands of the README live here:
#   make serve   install what is missing, build, serve the bundled zoo (models/) on $HOST:$PORT
#   make test    install what is missing, lint + format-check both languages, run every test
# Everything else (training, publishing, benchmarks) is an npm script or `python3 -m alphanet`.

SHELL := /bin/bash
# Debian's interpreter carries python3-torch; a pyenv/venv python3 earlier on PATH would not.
PYTHON ?= /usr/bin/python3
export PYTHON
# onnxruntime-node's postinstall downloads CUDA provider libraries from NuGet, which breaks an
# offline install. CPU hosts skip it; GPU hosts see README "CUDA" for the supported way.
export ONNXRUNTIME_NODE_INSTALL ?= skip

DEBIAN_PACKAGES := python3-torch python3-onnx python3-pytest python3-numpy python3-yaml \
	python3-jsonschema python3-pil python3-matplotlib dataset-fashion-mnist black python3-flake8 chromium \
	python3-grpcio python3-grpc-tools
APT_GET := $(if $(filter 0,$(shell id -u)),,sudo) apt-get

.PHONY: deps deps-debian deps-node build lint format test test-node test-python serve

deps: deps-debian deps-node

# Install only what is missing, so a provisioned machine pays nothing.
deps-debian:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(APT_GET) update -qq && DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq --no-install-recommends $$missing; \
	fi

deps-node: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: deps-node
	npm run build

lint: deps
	npm run lint
	# Dependency audit (policy in RELIABILITY.md): fails on high/critical advisories in production
	# dependencies; warns without failing when the registry's audit endpoint is unreachable.
	npm run audit
	$(PYTHON) -m black --check --quiet training test bench
	$(PYTHON) -m flake8 training test bench

format: deps
	npm run format
	$(PYTHON) -m black --quiet training test bench

test-node: deps build
	npm test

test-python: deps
	cd training && $(PYTHON) -m pytest -q -p no:cacheprovider ../test/training

test: lint test-node test-python

serve: deps build
	npm start
