# Shortcuts; every target works from a fresh clone (it creates .venv first).
PY := .venv/bin/python

.PHONY: venv demo test test-fast lab exercises bench grid clean

venv: .venv/.installed
.venv/.installed: pyproject.toml
	python3 -m venv .venv
	.venv/bin/pip install -q -e ".[dev,course]"
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

bench: venv           ## throughput vs PyTorch CPU (installs the CPU wheel of torch into .venv)
	.venv/bin/pip install -q torch==2.13.0
	$(PY) -m tinyqnn benchmark

clean:
	rm -rf runs/ .pytest_cache .hypothesis gradebook.db submitted/ autograded/ feedback/
