# Shortcuts; every target works from a fresh clone (it creates .venv first).
PY := .venv/bin/python

.PHONY: help venv demo test test-fast lab exercises bench grid clean

help:                 ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

venv: .venv/.installed
.venv/.installed: pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q -e ".[dev,course,distributed]"
	touch $@

demo: venv            ## the README's main job
	$(PY) -m tinyqnn demo

test: venv            ## everything CI runs
	$(PY) -m pytest

test-fast: venv       ## skip the slow notebook/nbgrader/training checks
	$(PY) -m pytest -m "not slow"

lab: venv             ## JupyterLab on the lessons
	.venv/bin/jupyter lab lessons/

exercises: venv       ## regenerate exercises/ from solutions/ (commit both)
	$(PY) -m tinyqnn release

bench: venv           ## throughput vs PyTorch CPU (installs torch's CPU wheel and threadpoolctl into .venv)
	.venv/bin/pip install -q torch==2.13.0 threadpoolctl
	$(PY) -m tinyqnn benchmark

grid: venv            ## Yin et al. Table 1 on full MNIST (hours; resumable: rerun to continue)
	$(PY) -m tinyqnn grid --out runs/table1_mnist

clean:
	rm -rf runs/ .pytest_cache .hypothesis gradebook.db submitted/ autograded/ feedback/
