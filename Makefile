# The two commands of the README. Both work on a fresh clone: they create .venv when it is
# missing and install the project with the exact versions in constraints.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The tests also cover the optional MuJoCo families (the `mujoco` extra); the demo does not
# need them, so `make demo` stays the light base install.
TEST_STAMP := $(VENV)/.installed-test-stamp
ONEDNN_STAMP := $(VENV)/.onednn-stamp
# Test processes (pytest-xdist): one per core of the CI machine. Each test file runs whole in
# one process (--dist loadfile), so a module's fixtures are computed once.
TEST_WORKERS ?= 2
# The tests compile hundreds of small XLA programs, and compiling is most of their time. With
# LLVM's -O0 backend an example's MPC episode compiled in 3.2 s instead of 8.6 s; XLA's own HLO
# passes still run, and the golden tests (bit-identical records made at the default level)
# pass with it. On a 2-core AMD EPYC (family 26 model 2) the suite took 864 s with it against
# 1115 s without. `make test TEST_XLA_FLAGS=` tests the default level.
TEST_XLA_FLAGS ?= --xla_backend_optimization_level=0

.PHONY: install demo test lint format clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check "pip>=24"
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev,onednn]"
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[dev,mujoco,onednn]"
	touch $(TEST_STAMP)

# The oneDNN dense layer (jaxmbrl/onednn.py), rebuilt when its source changes. Optional for
# install and demo: without it (no compiler, not x86-64 Linux) XLA's dot runs every layer.
# `make test` on x86-64 Linux requires it (JAXMBRL_REQUIRE_ONEDNN), so CI tests that path.
# The stamp is written only when the build succeeds, so a failed build is tried again.
$(ONEDNN_STAMP): $(STAMP) jaxmbrl/native/onednn_dense.cc
	$(BIN)/python -m jaxmbrl.onednn build && touch $(ONEDNN_STAMP) \
	  || echo "oneDNN layer not built: XLA's dot runs every layer"

install: $(STAMP) $(ONEDNN_STAMP)

demo: $(STAMP) $(ONEDNN_STAMP)
	$(BIN)/jaxmbrl demo --out runs/demo

# On x86-64 Linux the oneDNN layer must have been built, so its tests run rather than skip.
test: $(TEST_STAMP) $(ONEDNN_STAMP)
	$(BIN)/ruff check .
	JAXMBRL_REQUIRE_ONEDNN=$$(test "$$(uname -sm)" = "Linux x86_64" && echo 1) \
	XLA_FLAGS="$$XLA_FLAGS $(TEST_XLA_FLAGS)" \
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
