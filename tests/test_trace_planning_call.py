"""``benchmarks/trace_planning_call.py`` attributes a planning call's operations to its parts."""

import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "trace_planning_call.py"


@pytest.fixture(scope="module")
def tr():
    spec = importlib.util.spec_from_file_location("trace_planning_call", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _noisy_step(key, x):
    return x + jax.random.normal(key, x.shape)


def test_op_sources_name_the_function_and_the_random_draw(tr):
    hlo = jax.jit(_noisy_step).lower(jax.random.key(0), jnp.ones(8)).compile().as_text()
    sources = tr.op_sources(hlo)
    mine = {
        op: s
        for op, s in sources.items()
        if s[1].endswith("test_trace_planning_call.py:_noisy_step")
    }
    assert mine, sources
    parts = {tr.part_of(op, op_name, src) for op, (op_name, src) in sources.items()}
    assert "random_numbers" in parts


@pytest.mark.parametrize(
    ("name", "op_name", "source", "part"),
    [
        ("ffi_call.3", "jit(plan)/hidden_0/ffi_call", "onednn.py:_call", "onednn_layers"),
        ("dot_general.7", "jit(plan)/head/dot_general", "linear.py:Dense", "xla_dots"),
        ("while.2", "jit(_normal)/jit(_uniform)/while", "rollouts.py:<lambda>", "random_numbers"),
        ("while.9", "jit(plan)/while", "rollouts.py:_score_chunk", "loops"),
        ("fusion.1", "jit(plan)/reduce_sum", "rollouts.py:_random_permutations", "ts1_shuffle"),
        ("fusion.2", "jit(plan)/add", "rollouts.py:_imagined_step", "rollout_other"),
        ("fusion.3", "jit(plan)/sort", "rollouts.py:risk_score", "planner"),
        ("fusion.4", "jit(plan)/mul", "cem.py:cem.<locals>.plan", "planner"),
        ("fusion.5", "jit(plan)/mul", "ensemble.py:MemberMLP.__call__", "model_other"),
        ("copy.6", "", "", "rest"),
    ],
)  # fmt: skip
def test_part_of(tr, name, op_name, source, part):
    assert tr.part_of(name, op_name, source) == part


def test_quick_run_writes_parts_that_add_up(tr, tmp_path):
    report = tr.main(
        ["--only", "pendulum_cem_pop50", "--dtypes", "float32", "--calls", "1", "--top", "3",
         "--out", str(tmp_path)]
    )  # fmt: skip
    saved = json.loads((tmp_path / "trace_planning_call.json").read_text())
    (run,) = saved["runs"]
    assert run == json.loads(json.dumps(report["runs"][0]))
    assert set(run["parts_ms_per_call"]) == set(tr.PARTS)
    layers = run["parts_ms_per_call"]["xla_dots"] + run["parts_ms_per_call"]["onednn_layers"]
    assert layers > 0
    assert run["parts_ms_per_call"]["random_numbers"] > 0
    assert sum(run["parts_share_without_loops"].values()) == pytest.approx(1.0)
    assert len(run["top_ops"]) == 3


@pytest.mark.parametrize(
    "argv", [["--calls", "0"], ["--top", "0"], ["--only", "no_such_workload"], ["--dtypes", "int8"]]
)
def test_bad_arguments_exit_2_before_any_work(tr, argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        tr.main([*argv, "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "trace_planning_call.json").exists()
