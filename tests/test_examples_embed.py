"""examples/embed_planner.py: the planner under a user's vmap, scan and jit, traced once."""

import json
import math

import embed_planner
from json_numbers import numbers as _numbers


def test_quick_run_compiles_once_and_matches_a_python_loop(tmp_path):
    summary = embed_planner.main(["--quick", "--out", str(tmp_path)])
    path = tmp_path / "embed_planner.json"
    assert path.exists() and (tmp_path / "embed_planner.png").stat().st_size > 0
    written = json.loads(path.read_text())  # strict JSON: NaN would have been written as NaN
    assert written == json.loads(json.dumps(summary))
    assert all(math.isfinite(x) for x in _numbers(written))

    settings = written["settings"]
    for name in ("oracle", "learned"):
        r = written["results"][name]
        assert r["trace_count"] == 1, name  # two calls, one trace
        assert r["loop_check"]["passed"], (name, r["loop_check"])
        assert len(r["returns"]) == settings["num_envs"] == 64
        assert r["env_steps"] == settings["num_steps"] * settings["num_envs"]
        assert r["return_min"] <= r["return_mean"] <= r["return_max"] <= 0.0
        assert r["run_s"] > 0 and r["compile_s"] > 0
