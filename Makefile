# The two commands of the README. Both work on a fresh clone: they create .venv when it is
# missing and install the project with the exact versions in constraints.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The tests also cover the optional MuJoCo families (the `mujoco` extra); the demo does not
# need them, so `make demo` stays the light base install.
TEST_STAMP := $(VENV)/.installed-test-stamp
# Test processes (pytest-xdist): one per core of the CI machine. Each test file runs whole in
# one process (--dist loadfile), so a module's fixtures are computed once.
TEST_WORKERS ?= 2

.PHONY: install demo test lint format clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "pip>=24"
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev,mujoco]"
	touch $(TEST_STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/jaxmbrl demo --out runs/demo

test: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
