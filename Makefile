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

.PHONY: venv demo test test-fast bench clean browsers fonts

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[cpu,train,ui,dev]'
	touch $@

venv: $(BIN)/.installed

# Chromium for the browser tests comes from Debian (never a downloaded browser build).
browsers:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "chromium missing: sudo apt-get install -y chromium (browser tests will skip)"; fi; }

# The colour test and benchmark data (`--data emoji`) is drawn from Debian's emoji font.
EMOJI_FONT := /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf
fonts:
	@test -f $(EMOJI_FONT) || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq fonts-noto-color-emoji; \
	  else echo "emoji font missing: sudo apt-get install -y fonts-noto-color-emoji (emoji tests will skip)"; fi; }

demo: venv
	$(BIN)/vaekit-train --data digits --out $(RUN) --force
	$(BIN)/vaekit-export $(RUN) --out $(BUNDLE) --force
	$(BIN)/vaekit-ui $(BUNDLE) --host $(HOST) --port $(PORT)

test: venv browsers fonts
	$(BIN)/python -m pytest

test-fast: venv
	$(BIN)/python -m pytest -m "not slow and not browser"

bench: venv
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) runs bundles .pytest_cache
