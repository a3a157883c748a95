# Shortcuts; every target works from a fresh clone (it creates .venv first).
PY := .venv/bin/python
# the folder `make lab` serves: the checkout (lessons/ and exercises/), or WORK=DIR, a workspace copy
WORK ?= .
JUPYTER := .venv/bin/jupyter

.PHONY: help venv venv-web demo test test-fast lab workspace exercises site lite lite-offline web-measure bench grid clean

help:                 ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

venv: .venv/.installed
.venv/.installed: pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q -e ".[dev,course,distributed]"
	touch $@

venv-web: .venv/.installed-web
.venv/.installed-web: .venv/.installed
	.venv/bin/pip install -q -e ".[dev,course,distributed,web]"
	touch $@

demo: venv            ## the README's main job
	$(PY) -m tinyqnn demo

test: venv            ## everything CI runs
	$(PY) -m pytest

test-fast: venv       ## skip the slow notebook/nbgrader/training checks
	$(PY) -m pytest -m "not slow"

lab: venv             ## JupyterLab on lessons/ and exercises/ (WORK=DIR: on your workspace copy)
	@root="$$(cd $(WORK) && pwd)" && echo "JupyterLab on $$root" && \
	OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} $(JUPYTER) lab --ServerApp.root_dir="$$root"

workspace: venv       ## copy lessons/ and exercises/ to WORK=DIR outside git (never overwrites your files)
	@test "$(WORK)" != "." || { echo "usage: make workspace WORK=~/tinyqnn-work"; exit 2; }
	$(PY) -m tinyqnn workspace $(WORK)

exercises: venv       ## regenerate exercises/ from solutions/ (commit both)
	$(PY) -m tinyqnn release

site: venv-web       ## the course site in build/site: every lesson as a page, offline (includes build/lite if built)
	$(PY) -m tinyqnn site

lite: venv-web       ## the browser course in build/lite: JupyterLite, Pyodide from its CDN (then `make site` includes it)
	$(PY) -m tinyqnn lite

lite-offline: venv-web ## the same with Pyodide bundled in the site: no internet needed to use it (what the tests use)
	$(PY) -m tinyqnn lite --offline

web-measure: venv-web ## site build time and size, browser kernel start, lesson run times browser vs CPython
	$(PY) -m tinyqnn web-measure

bench: venv           ## throughput vs PyTorch CPU (installs torch's CPU wheel and threadpoolctl into .venv)
	.venv/bin/pip install -q torch==2.13.0 threadpoolctl
	$(PY) -m tinyqnn benchmark

grid: venv            ## Yin et al. Table 1 on full MNIST (hours; resumable: rerun to continue)
	$(PY) -m tinyqnn grid --out runs/table1_mnist

clean:
	rm -rf runs/ .pytest_cache .hypothesis gradebook.db submitted/ autograded/ feedback/
