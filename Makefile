# Two commands do everything on a fresh machine: `make demo` and `make test`.
# torch is pinned in the same pip command as everything that depends on it, so pip keeps the CPU
# build instead of pulling a multi-GB CUDA one (see ../shared/DATASETS.md).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_PINS := torch==2.13.0 torchvision==0.28.0
STAMP := $(VENV)/.headstart-installed

.PHONY: setup demo test bench-speed bench-strategies bench-regularizers bench-contrastive bench-transferability bench-audio bench-adaptation bench-peers bench-fewshot clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools
	$(PY) -m pip install -q $(TORCH_PINS) -e ".[test,audio,peers,ray,medical,segmentation]"
	$(PY) -m headstart models pull --all
	command -v espeak-ng >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng; } || echo "espeak-ng not installed: tests/test_audio.py skips its spoken-word tests"
# Debian's chromium renders the HTML report in tests/test_report.py; only root can install it (others: skipped).
	command -v chromium >/dev/null || [ "$$(id -u)" != 0 ] \
	  || DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
	  || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } \
	  || echo "warning: could not install chromium; the report's browser test will be skipped" >&2
	touch $(STAMP)

demo: setup
	$(VENV)/bin/headstart demo

test: setup
	$(PY) -m pytest -q

# The full benchmark suites (long: run them by hand on an idle machine); each writes its table to docs/benchmarks.md.
bench-speed: setup
	$(PY) -m bench.speed

bench-strategies: setup
	$(PY) -m bench.strategies

bench-regularizers: setup
	$(PY) -m bench.regularizers

bench-contrastive: setup
	$(PY) -m bench.contrastive

bench-transferability: setup
	$(PY) -m bench.transferability

bench-audio: setup
	$(PY) -m bench.audio

bench-adaptation: setup
	$(PY) -m bench.adaptation

bench-peers: setup
	$(PY) -m bench.peers

bench-fewshot: setup
	$(PY) -m bench.fewshot

clean:
	rm -rf $(VENV) runs .pytest_cache
