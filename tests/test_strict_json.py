"""Strict results files: every JSON file the project writes is RFC 8259 JSON (no NaN/Infinity).

Non-finite numbers are written as ``null``: :func:`jaxmbrl.reporting.strict_json` maps them
to ``None`` and :func:`jaxmbrl.reporting.write_json` writes with ``allow_nan=False``; the
runner stores ``None`` in the results themselves, so the orbax checkpoint of the results and
a resumed run are strict too.
"""

import math
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import check_strict_json_files, strict_loads

from jaxmbrl import reporting, runner

NAN, INF = float("nan"), float("inf")


# --------------------------------------------------------------------------------------
# strict_json
# --------------------------------------------------------------------------------------


def test_non_finite_python_floats_become_none():
    payload = {"nan": NAN, "inf": INF, "-inf": -INF, "x": 1.5, "n": 3, "s": "NaN", "z": None}
    assert reporting.strict_json(payload) == {
        "nan": None,
        "inf": None,
        "-inf": None,
        "x": 1.5,
        "n": 3,
        "s": "NaN",
        "z": None,
    }


def test_numpy_scalars_become_python_values():
    out = reporting.strict_json(
        [np.float32("nan"), np.float64(-np.inf), np.float32(0.5), np.int64(7), np.bool_(True)]
    )
    assert out == [None, None, 0.5, 7, True]
    assert [type(v) for v in out[2:]] == [float, int, bool]


@pytest.mark.parametrize("to_array", [np.asarray, jnp.asarray], ids=["numpy", "jax"])
def test_arrays_become_nested_lists_with_none(to_array):
    x = to_array(np.array([[1.0, np.nan], [np.inf, -np.inf]], np.float32))  # [2, 2]
    assert reporting.strict_json(x) == [[1.0, None], [None, None]]
    assert reporting.strict_json(to_array(np.float32("nan"))) is None  # 0-d
    assert reporting.strict_json(to_array(np.array([1, 2], np.int32))) == [1, 2]
    assert reporting.strict_json(to_array(np.array([True, False]))) == [True, False]


def test_bfloat16_nan_becomes_none():
    x = jnp.array([0.5, jnp.nan], jnp.bfloat16)
    assert reporting.strict_json({"x": x, "s": x[1]}) == {"x": [0.5, None], "s": None}


def test_nested_trees_tuples_and_keys():
    payload = {
        "a": ({"b": [NAN, (1, INF)]}, np.array([2.0, np.nan])),
        3: -INF,  # keys are kept as they are
        "e": [],
    }
    out = reporting.strict_json(payload)
    assert out == {"a": [{"b": [None, [1, None]]}, [2.0, None]], 3: None, "e": []}
    assert math.isnan(payload["a"][0]["b"][0])  # the input is not modified


def test_finite_numbers_are_unchanged():
    values = [0.1, -0.0, 1e300, 5e-324, 2**53 + 1, -7]
    assert reporting.strict_json(values) == values
    assert math.copysign(1.0, reporting.strict_json(-0.0)) == -1.0


# --------------------------------------------------------------------------------------
# write_json
# --------------------------------------------------------------------------------------


def test_write_json_of_python_floats_has_no_nan_tokens(tmp_path):
    reporting.write_json(tmp_path / "r.json", {"x": [NAN, INF, -INF, 0.5]})
    assert strict_loads((tmp_path / "r.json").read_text()) == {"x": [None, None, None, 0.5]}


def test_write_json_writes_non_finite_as_null(tmp_path):
    payload = {
        "returns": [[1.0, NAN], [INF, -INF]],
        "imagined": np.array([np.nan, 2.5], np.float32),
        "jax": jnp.array([jnp.inf, 1.0]),
        "scalar": np.float32("nan"),
        "count": np.int64(4),
    }
    path = tmp_path / "results.json"
    reporting.write_json(path, payload)
    text = path.read_text()
    for token in ("NaN", "Infinity"):
        assert token not in text
    assert strict_loads(text) == {
        "returns": [[1.0, None], [None, None]],
        "imagined": [None, 2.5],
        "jax": [None, 1.0],
        "scalar": None,
        "count": 4,
    }


def test_write_json_round_trips_finite_numbers_exactly(tmp_path):
    payload = {"x": [0.1, 1 / 3, 1e-300, -2.5e17], "n": 2**60, "ok": True}
    reporting.write_json(tmp_path / "f.json", payload)
    assert strict_loads((tmp_path / "f.json").read_text()) == payload


def test_the_conftest_check_names_a_file_with_nan(tmp_path_factory):
    root = tmp_path_factory.mktemp("loose")  # not tmp_path: the autouse check would fail
    (root / "sub").mkdir()
    (root / "sub" / "loose.json").write_text('{"x": [1.0, NaN]}')
    (root / "good.json").write_text('{"x": [1.0, null]}')
    with pytest.raises(pytest.fail.Exception, match=r"sub/loose\.json.*NaN"):
        check_strict_json_files(root)
    (root / "sub" / "loose.json").write_text('{"x": -Infinity}')
    with pytest.raises(pytest.fail.Exception, match="-Infinity"):
        check_strict_json_files(root)


# --------------------------------------------------------------------------------------
# The runner: results, checkpoints and resume
# --------------------------------------------------------------------------------------

SEEDS = [0, 1]
NUM_ITERATIONS = 3


def _fake_experiment() -> tuple[runner.Experiment, runner.ExperimentInfo]:
    """Per-seed metrics with NaN, inf and -inf, drawn from a key the state carries."""

    def init(keys, seed_ids):
        return {"key": keys, "count": jnp.zeros_like(seed_ids)}

    def warmup(state, clock):
        return state, {"warmup_return": jnp.array([jnp.nan, 1.0])}  # [S]

    @jax.jit
    def step(state):
        keys = jax.vmap(jax.random.split)(state["key"])  # [S, 2]
        x = jax.vmap(jax.random.uniform)(keys[:, 0])  # [S]
        count = state["count"] + 1
        metrics = {
            "loss": jnp.where(count == 2, jnp.nan, x),  # [S]
            "imagined": jnp.stack([x, jnp.full_like(x, jnp.inf), -jnp.full_like(x, jnp.inf)], 1),
        }
        return {"key": keys[:, 1], "count": count}, metrics

    def iterate(state, clock, progress):
        return clock("step", step, state)

    def summary(results, it):
        return f"loss {runner.mean_text(results['loss'], -1)}"

    info = runner.ExperimentInfo(
        num_iterations=NUM_ITERATIONS,
        steps_per_iteration=1,
        config={"name": "fake"},
        record={"algorithm": "fake"},
        warmup_metrics=("warmup_return",),
        iteration_metrics=("loss", "imagined"),
    )
    experiment = runner.Experiment(init=init, warmup=warmup, iterate=iterate, summary=summary)
    return experiment, info


def _json_files(root: pathlib.Path) -> list[pathlib.Path]:
    """Every JSON file under ``root``: ``*.json`` and orbax's (``results/metadata``, ...)."""
    found = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        head = path.read_bytes()[:1]
        if path.suffix == ".json" or head in (b"{", b"["):
            found.append(path)
    return found


def _series(results: dict) -> dict:
    """The results without wall times and the machine record (they differ between runs)."""
    return {k: v for k, v in results.items() if not k.endswith("_wall_s") and k != "versions"}


def test_runner_results_and_checkpoints_are_strict(tmp_path):
    experiment, info = _fake_experiment()
    results = runner.run(experiment, info, SEEDS, out_dir=str(tmp_path), log=None)

    assert results["warmup_return"] == [[None], [1.0]]
    for s in range(len(SEEDS)):
        assert results["loss"][s][1] is None
        assert all(isinstance(v, float) for i, v in enumerate(results["loss"][s]) if i != 1)
        assert results["imagined"][s][1::3] == [None] * NUM_ITERATIONS  # inf
        assert results["imagined"][s][2::3] == [None] * NUM_ITERATIONS  # -inf

    files = _json_files(tmp_path)
    saved = [p for p in files if p.parent.name == "results"]
    assert saved, f"no results JSON among {files}"  # orbax's JsonSave file was found
    for path in files:
        strict_loads(path.read_text())
    latest = max(saved, key=lambda p: int(p.parent.parent.name))
    assert _series(strict_loads(latest.read_text())) == _series(results)


def test_runner_resume_equals_uninterrupted_run(tmp_path):
    experiment, info = _fake_experiment()
    full = runner.run(experiment, info, SEEDS, log=None)

    def interrupt(it, results):
        if it == 0:
            raise KeyboardInterrupt

    out = str(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        runner.run(experiment, info, SEEDS, out_dir=out, log=None, on_iteration_end=interrupt)
    resumed = runner.run(experiment, info, SEEDS, out_dir=out, resume=True, log=None)
    assert _series(resumed) == _series(full)
    assert resumed["loss"][0][1] is None
