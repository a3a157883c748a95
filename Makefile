# Shortcuts; every target works from a fresh clone (it creates .venv first).
PY := .venv/bin/python
# the folder `make lab` serves: the checkout (lessons/ and exercises/), or WORK=DIR, a workspace copy
WORK ?= .
JUPYTER := $(CURDIR)/.venv/bin/jupyter
# what `make lab` needs in .venv: the README's `pip install -e ".[course]"` provides it as well as `make venv`
LAB_NEEDS := import tinyqnn, jupyterlab, nbgrader

.PHONY: help venv venv-web lab-env demo test test-fast lab workspace exercises site lite lite-offline web-measure bench grid clean

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

# an existing .venv that has what the lab needs is used as it is (no reinstall after the README's pip route)
lab-env:
	@$(PY) -c "$(LAB_NEEDS)" 2>/dev/null || $(MAKE) --no-print-directory venv

# Started from the folder it serves: nbgrader reads the course directory from the working directory's
# nbgrader_config.py, and a course directory outside the server root makes it log an error. As root, JupyterLab
# refuses to start without --allow-root.
lab: lab-env          ## JupyterLab on lessons/ and exercises/ (WORK=DIR: on your workspace copy)
	@root="$$(cd $(WORK) && pwd)" && echo "JupyterLab on $$root" && cd "$$root" && \
	OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-1} $(JUPYTER) lab --ServerApp.root_dir="$$root" \
	$$(test "$$(id -u)" != 0 || echo --allow-root)

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
