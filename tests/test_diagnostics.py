"""jaxmbrl.diagnostics: window returns and gap summaries by hand, plan traces jit = eager."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl import diagnostics, mpc
from jaxmbrl.envs import gymnax_adapter, make
from jaxmbrl.planners.registry import PlannerSpec, build
from jaxmbrl.types import ActionSpace


def test_window_returns_against_a_loop():
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=(2, 12))
    got = diagnostics.window_returns(rewards, 4)
    want = np.array([[r[t : t + 4].sum() for t in range(9)] for r in rewards])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_summarize_by_hand():
    # One episode, T = 3, H = 2: two windows (t = 0, 1).
    trace = diagnostics.PlanTrace(
        reward=jnp.array([[-1.0, -2.0, -4.0]]),
        expected=jnp.array([[0.0, 0.0, 0.0]]),
        imagined=jnp.array([[-1.0, -3.0, 9.0]]),
        open_loop=jnp.array([[-2.0, -7.0, 9.0]]),
        imagined_first=None,
    )
    s = diagnostics.summarize(trace, 2)
    assert s["imagined"] == -2.0 and s["open_loop"] == -4.5
    assert s["closed_loop"] == -4.5  # windows -3 and -6
    assert s["gap_open"] == 2.5 and s["gap_closed"] == 2.5 and s["gap_open_per_step"] == 1.25
    assert s["real_return"] == -7.0 and "imagined_one_step_return" not in s


def test_plan_trace_is_deterministic_and_jit_equals_eager():
    gym_env, params = make("PointMass-v0")
    env = gymnax_adapter.functions(gym_env, params)
    model = gymnax_adapter.functions(gym_env, params.replace(gain=0.05))
    options = {"num_samples": 16, "num_elites": 4, "return_mean_elites": False}
    spec = PlannerSpec("cem", horizon=4, options=options)
    planner, _ = build(spec, ActionSpace.box((-1.0,), (1.0,)))
    run = lambda k: diagnostics.plan_trace(env, planner, mpc.oracle(model), k, num_steps=6)
    key = jax.random.key(3)
    a, b, c = run(key), run(key), jax.jit(run)(key)
    for x, y, z in zip(a, b, c, strict=True):
        if x is None:
            assert y is None and z is None
            continue
        np.testing.assert_array_equal(x, y)
        np.testing.assert_allclose(x, z, rtol=1e-5, atol=1e-6)
    assert a.reward.shape == a.imagined.shape == a.open_loop.shape == (6,)
