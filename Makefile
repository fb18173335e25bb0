# mmed-agent-rl - two commands for a fresh machine with Python 3.11:
#   make demo   # virtual env + the main job (all notebooks, demo profile) into runs/demo
#   make test   # virtual env + the test suite
# GPU users: see README ("Install on a GPU machine").

PYTHON     ?= python3.11
VENV       ?= .venv
PY         := $(VENV)/bin/python
# CPU machines: the CPU build of torch (an unpinned `torch` pulls a multi-GB CUDA build).
TORCH_SPEC ?= torch==2.13.0
PROFILE    ?= demo
RUN        ?=
RUN_DIR    ?= runs/$(PROFILE)
PYTEST_ARGS ?=

.PHONY: setup demo test notebooks figures clean-venv

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=python3 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install $(TORCH_SPEC)  # unquoted: it may carry --index-url
	$(PY) -m pip install -e ".[test]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m mmed notebooks --profile $(PROFILE) --run-dir $(RUN_DIR)

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

notebooks: setup
	$(PY) -m mmed notebooks --profile $(PROFILE) --run-dir $(RUN_DIR)

# `make figures` redraws figures/ from the committed CSV/JSON beside them;
# `make figures RUN=runs/<id>` first refreshes those files from a run.
figures: setup
	$(PY) -m mmed figures $(if $(RUN),--run-dir $(RUN),)

clean-venv:
	rm -rf $(VENV)
