# Two entry points (README): `make study` and `make test`; each creates .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: study test test-fast bench notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

study: $(STAMP)  ## install, then run the label-noise study with its quick (CPU) budget
	$(PY) -m study.run search_spaces/label_noise.yaml --quick

test: $(STAMP)  ## install, then run every test, the slow end-to-end ones included
	$(PY) -m pytest -m "" -q -rs

test-fast: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/trainable_overhead.py

notebooks: $(STAMP)  ## regenerate reports/*.ipynb from their jupytext sources reports/*.py
	$(PY) reports/build.py

.PHONY: notebooks-check
notebooks-check: $(STAMP)  ## fail when a committed notebook differs from what its source builds
	$(PY) reports/build.py --check

.PHONY: notebooks-lint
notebooks-lint: $(STAMP)  ## ruff on the notebook sources and their shared setup
	$(PY) -m ruff check reports/*.py study/notebook.py

clean:
	rm -rf $(VENV) .studies
