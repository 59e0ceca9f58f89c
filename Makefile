# mmembed developer entry points. `make install` sets everything up in .venv;
# every other target depends on it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.mmembed-install-stamp
INSTALL_INPUTS := setup.py requirements/runtime.txt requirements/tests.txt \
	requirements/build.txt requirements/mminstall.txt tools/misc/install_env.sh

# demo knobs
DEMO_DIR ?= work_dirs/demo
DEMO_DATA ?= data/synthetic
DEMO_CONFIG ?= configs/embedmask/embedmask_lite0_fpn_synthetic.py
DEMO_IMAGE ?= 000005.png
DEMO_SCORE_THR ?= 0.2

.PHONY: install test demo clean-demo lint

install: $(STAMP)
	@$(PY) tools/misc/check_install.py

$(STAMP): $(INSTALL_INPUTS)
	PYTHON=$(PYTHON) VENV=$(VENV) bash tools/misc/install_env.sh
	@touch $(STAMP)

test: install
	$(PY) -m pytest tests -q -p no:cacheprovider --durations=25

demo: install
	$(PY) tools/misc/make_synthetic_coco.py --out-dir $(DEMO_DATA)
	$(PY) tools/train.py $(DEMO_CONFIG) --work-dir $(DEMO_DIR)
	$(PY) tools/test.py $(DEMO_CONFIG) $$(cat $(DEMO_DIR)/last_checkpoint) \
		--work-dir $(DEMO_DIR) --out $(DEMO_DIR)/predictions.pkl
	$(PY) demo/image_demo.py $(DEMO_DATA)/val/$(DEMO_IMAGE) $(DEMO_CONFIG) \
		--weights $$(cat $(DEMO_DIR)/last_checkpoint) --device cpu \
		--out-dir $(DEMO_DIR) --pred-score-thr $(DEMO_SCORE_THR)
	@echo "bbox / segm AP: see the coco/bbox_mAP and coco/segm_mAP lines above"
	@echo "prediction picture: $(DEMO_DIR)/vis/$(DEMO_IMAGE)"

clean-demo:
	rm -rf $(DEMO_DIR) $(DEMO_DATA)
