"""examples/compounding_error.py in --quick mode: finite results, a figure, error that compounds."""

import json
import math

import compounding_error
from json_numbers import numbers


def test_quick_run_writes_finite_results_and_error_grows_with_horizon(tmp_path):
    summary = compounding_error.main(["--quick", "--out", str(tmp_path)])
    written = json.loads((tmp_path / "compounding_error.json").read_text())
    assert written == json.loads(json.dumps(summary))
    values = numbers(written)
    assert len(values) > 50 and all(math.isfinite(x) for x in values)
    assert (tmp_path / "compounding_error.png").stat().st_size > 10_000
    horizon = written["horizon"]
    assert horizon[0] == 1 and len(written["single_error"]) == len(horizon)
    # Open-loop error compounds: far ahead it is well above the one-step error.
    for name in ("single_error", "ensemble_mean_error"):
        assert written[name][-1] > 3 * written[name][0], name
