"""Test configuration: the examples folder is importable; strict rank promotion where it applies;
every ``*.json`` file a test writes under ``tmp_path`` must be strict RFC 8259 JSON."""

import json
import pathlib
import sys

import jax
import pytest

# Before any test module's imports: gymnax's import starts JAX's backend, after which jaxmbrl
# can no longer choose the CPU dot library, and the suite must test the library users get.
import jaxmbrl  # noqa: F401

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


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON (RFC 8259 has no NaN or Infinity)")


def strict_loads(text: str):
    """``json.loads`` that rejects the ``NaN``, ``Infinity`` and ``-Infinity`` tokens."""
    return json.loads(text, parse_constant=_reject_constant)


def check_strict_json_files(root: pathlib.Path) -> None:
    """Fail (naming the file) if a ``*.json`` file under ``root`` is not strict JSON."""
    for path in sorted(root.rglob("*.json")):
        try:
            strict_loads(path.read_text())
        except ValueError as err:
            pytest.fail(f"{path.relative_to(root)} is not strict RFC 8259 JSON: {err}")


@pytest.fixture(autouse=True)
def _strict_json_files(request):
    """After a test that used ``tmp_path``, check the ``*.json`` files it wrote there."""
    if "tmp_path" not in request.fixturenames:
        yield
        return
    tmp_path = request.getfixturevalue("tmp_path")
    yield
    check_strict_json_files(tmp_path)
