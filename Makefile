# Two commands: `make demo` and `make test`. Each creates .venv and installs what it needs.
#
# TORCH_SPEC is installed into the venv before the project, so pip's resolver does not pick
# a torch wheel on its own. Its default is the CPU build that this project's development and
# CI machines carry on disk; elsewhere pass any spec, e.g. `make test TORCH_SPEC=torch`.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python

.PHONY: demo test lessons clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m minidq demo

# TEST_JOBS pytest processes (pytest-xdist; auto = one per CPU core), one torch thread each:
# threads of their own would fight over the same cores.
TEST_JOBS ?= auto
test: $(VENV)/.installed
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n $(TEST_JOBS) --dist worksteal

# re-execute every lesson notebook in place: the repository stores them with their outputs
lessons: $(VENV)/.installed
	$(PY) lessons/run_all.py

clean:
	rm -rf $(VENV) runs
