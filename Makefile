# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RUN    ?= runs/digits
BUNDLE ?= bundles/digits
HOST   ?= 127.0.0.1
PORT   ?= 7860
# torch is pinned only here (a CPU wheel on this machine's disk); pyproject keeps the range.
TORCH  ?= torch==2.13.0

.PHONY: venv demo test test-fast lint docs bench clean system-packages

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[cpu,train,ui,dev]'
	touch $@

# The JavaScript runtime's and static page's dependencies (onnxruntime-node, onnxruntime-web), exactly as
# package-lock.json pins them; CUDA is skipped, so the install needs the npm registry only.
node_modules/.installed: package.json package-lock.json
	ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm ci --no-audit --no-fund
	touch $@

venv: $(BIN)/.installed node_modules/.installed

# Debian packages some tests need: Chromium for the browser tests (never a downloaded browser build), qemu's
# user-mode emulator, which runs int8 bundles on other CPU models, and the emoji font that `--data emoji`
# (colour test and benchmark data) draws from. Installed when run as root.
SYSTEM_PACKAGES := chromium qemu-user fonts-noto-color-emoji
system-packages:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages: sudo apt-get install -y $$missing (the tests that need them will skip)"; fi; fi

demo: venv
	$(BIN)/vaekit-train --data digits --out $(RUN) --force
	$(BIN)/vaekit-export $(RUN) --out $(BUNDLE) --force
	$(BIN)/vaekit-ui $(BUNDLE) --host $(HOST) --port $(PORT)

# pytest runs `node --test` too (tests/js), on bundles it exports first.
test: venv system-packages lint docs
	$(BIN)/python -m pytest

# ruff (rules and line length in pyproject.toml): part of `make test`, so CI runs it
lint: venv
	$(BIN)/ruff check .

# the documentation site (mkdocs.yml, docs/): --strict turns every broken link or missing page into an error
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

test-fast: venv
	$(BIN)/python -m pytest -m "not slow and not browser"

# pythae's default VAE is a peer recipe of benchmarks/quality.py (benchmarks/peers.py); only the benchmarks use it
PYTHAE ?= pythae==0.1.2
bench: venv
	$(BIN)/pip install -q $(PYTHAE)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs bundles .pytest_cache node_modules build/site
