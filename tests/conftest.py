"""Test configuration: the examples folder is importable; strict rank promotion where it applies."""

import pathlib
import sys

import jax
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

# Test modules whose code (and the library code they call) must not rely on silent broadcasting:
# under ``jax_numpy_rank_promotion="raise"`` an implicit rank promotion is an error.
STRICT_RANK_PROMOTION_PREFIXES = (
    "test_planners_",
    "test_random_shooting",
    "test_models_",
    "test_rollouts",
    "test_buffer",
)


@pytest.fixture(autouse=True)
def _strict_rank_promotion(request):
    name = request.module.__name__.rpartition(".")[2]
    if name.startswith(STRICT_RANK_PROMOTION_PREFIXES):
        with jax.numpy_rank_promotion("raise"):
            yield
    else:
        yield
