# Two entry points (README): `make study` and `make test`; each creates .venv on first use.
# CI (.ci/run): `make install`, `make lint`, `make notebooks-check`, `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help install study test verify verify-cluster test-fast lint report ui bench notebooks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 18

install: $(STAMP)  ## create .venv and install the project with its dev extra (once; again when pyproject.toml changes)

study: $(STAMP)  ## install, then run the quick label-noise demo (2D ring, ~10 min on 2 CPU cores)
	$(PY) -m study.run search_spaces/ring8_label_noise.yaml --quick

test: $(STAMP)  ## install, then run every test, the slow end-to-end ones included (what CI runs)
	$(PY) -m pytest -m "not verify" -q -rs --durations=25

verify: $(STAMP)  ## the runs too long for CI (marker verify: the 200-trial load tests on SQLite and on the MLflow server; a killed tracking server; a store locked mid-study; a killed driver (one seed a trial); the trial user on the server; a study through TLS in front of the server; the 8-slot concurrency measurement; the README flow on a fresh clone; the quick throughput benchmark; the grid25 PacGAN quick form; the 2D systems comparison's quick form)
	$(PY) -m pytest -m verify -q -rs -s

verify-cluster: $(STAMP)  ## the cluster flows for real (root, openssh-server, rsync): cluster/onprem.yaml's `ray up`, `ray submit` (also --tmux, the driver killed, --resume), the MLflow UI through an SSH tunnel, `ray job submit`, `ray down` on two SSH hosts in private namespaces; cluster/aws-gpu.yaml's node commands on two fresh namespace nodes
	$(PY) -m pytest -m verify tests/study/test_cluster_launcher.py tests/study/test_cluster_aws_commands.py -q -rs -s

test-fast: $(STAMP)  ## the default suite: every test but the slow (Ray, notebook kernel, subprocess study) ones
	$(PY) -m pytest -q

LINT_PATHS := study trainables tests benchmarks reports/*.py

lint: $(STAMP)  ## ruff on the code, tests, benchmarks and notebook sources; mypy (files and options: pyproject.toml)
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m mypy

REPORT ?= label_noise
# the experiment the report reads: `make study`'s for the default notebook, else the notebook's own default
EXPERIMENT ?= $(if $(filter label_noise,$(REPORT)),ring8_label_noise_quick,)

report: $(STAMP)  ## execute reports/$(REPORT).ipynb on the store `make study` wrote; HTML in .studies/reports/
	$(PY) -m study.cli report $(REPORT) $(if $(EXPERIMENT),--experiment $(EXPERIMENT))

ui: $(STAMP)  ## the MLflow UI on the store `make study` wrote (http://127.0.0.1:5000)
	$(PY) -m study.cli ui

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
