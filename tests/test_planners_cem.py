"""CEM: the elite update against NumPy, the sampling, the optimum, warm start, configuration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl.planners import CEMConfig, CEMState, cem, cem_update
from jaxmbrl.planners.cem import truncated_normal_samples


def _config(**kw):
    base = dict(horizon=3, action_low=(-1.0, 0.0), action_high=(1.0, 1.0))
    base.update(kw)
    return CEMConfig(**base)


def _quadratic(target):
    def objective(key, actions):
        del key
        return -jnp.sum((actions - target[None, None]) ** 2, axis=(1, 2))

    return objective


def _numpy_cem_update(mean, var, samples, returns, num_elites, alpha):
    """mbrl-lib's CEMOptimizer update, in NumPy."""
    order = np.argsort(-returns, kind="stable")[:num_elites]
    elites = samples[order]
    new_mean = alpha * mean + (1 - alpha) * elites.mean(axis=0)
    new_var = alpha * var + (1 - alpha) * elites.var(axis=0)  # ddof=0, as torch unbiased=False
    return new_mean, new_var, order


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("with_neg_inf", [False, True])
def test_elite_update_equals_numpy(use_jit, with_neg_inf):
    rng = np.random.default_rng(0)
    n, h, a, k, alpha = 20, 3, 2, 5, 0.3
    mean = rng.normal(size=(h, a)).astype(np.float32)
    var = rng.uniform(0.1, 1.0, size=(h, a)).astype(np.float32)
    samples = rng.normal(size=(n, h, a)).astype(np.float32)
    returns = rng.normal(size=n).astype(np.float32)
    if with_neg_inf:
        returns[::3] = -np.inf  # diverged rollouts: never elites while finite ones remain
    update = lambda *args: cem_update(*args, k, alpha)
    update = jax.jit(update) if use_jit else update
    new_mean, new_var, elite_idx, elite_returns = update(mean, var, samples, returns)
    np_mean, np_var, np_idx = _numpy_cem_update(mean, var, samples, returns, k, alpha)
    np.testing.assert_array_equal(elite_idx, np_idx)
    np.testing.assert_array_equal(elite_returns, returns[np_idx])
    np.testing.assert_allclose(new_mean, np_mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(new_var, np_var, rtol=1e-6, atol=1e-6)


def test_truncated_normal_samples_follow_mbrl_lib():
    low, high = jnp.array([-1.0, 0.0]), jnp.array([1.0, 1.0])
    mean = jnp.array([[0.0, 0.5], [0.9, 1.0]])  # the last entry sits on the upper bound
    var = jnp.full((2, 2), 0.01)
    x = np.asarray(truncated_normal_samples(jax.random.key(0), mean, var, low, high, 20000))
    assert x.shape == (20000, 2, 2) and x.dtype == np.float32
    assert np.all(x >= np.asarray(low)) and np.all(x <= np.asarray(high))
    # Interior with a small variance: std = sqrt(var) * std of N(0, 1) truncated to [-2, 2].
    truncated_std = 0.8796
    np.testing.assert_allclose(x[:, 0].std(axis=0), 0.1 * truncated_std, rtol=0.03)
    np.testing.assert_allclose(x[:, 0].mean(axis=0), [0.0, 0.5], atol=0.003)
    # Near a bound the variance is capped at ((high - mean) / 2)**2, so the samples stay in.
    np.testing.assert_allclose(x[:, 1, 0].std(), 0.05 * truncated_std, rtol=0.03)
    assert np.abs(x[:, 1, 0]).max() <= 1.0
    np.testing.assert_array_equal(x[:, 1, 1], 1.0)  # on the bound: zero variance


@pytest.mark.parametrize("return_mean_elites", [True, False])
def test_finds_optimum_of_concave_objective(return_mean_elites):
    # (Un-jitted planning is compared with jitted planning in test_planners_invariants.py.)
    planner = cem(
        _config(
            num_samples=100,
            num_elites=10,
            num_iterations=30,
            return_mean_elites=return_mean_elites,
        )
    )
    target = jnp.array([0.3, 0.6])
    plan = jax.jit(lambda s, k: planner.plan(s, k, _quadratic(target)))
    action, state, info = plan(planner.init(), jax.random.key(0))
    np.testing.assert_allclose(info.solution, np.broadcast_to(target, (3, 2)), atol=1e-3)
    np.testing.assert_allclose(action, target, atol=1e-3)
    np.testing.assert_array_equal(state.mean, info.solution)
    assert -1e-5 < float(info.expected_return) <= 0.0
    assert np.all(np.asarray(state.std) < 1e-2)  # the distribution has narrowed
    if not return_mean_elites:
        # The best sequence's reported return is its true score.
        np.testing.assert_allclose(
            info.expected_return, _quadratic(target)(None, info.solution[None])[0], rtol=1e-5
        )


def test_keep_std_uses_the_stored_std():
    planner = cem(_config(num_samples=16, num_elites=4, num_iterations=1, keep_std=True))
    start = jnp.full((3, 2), 0.25)
    state = CEMState(mean=start, std=jnp.zeros((3, 2)))  # zero spread: nothing can move
    _, new_state, _ = planner.plan(state, jax.random.key(2), _quadratic(jnp.zeros(2)))
    np.testing.assert_allclose(new_state.mean, start)
    np.testing.assert_allclose(new_state.std, 0.0)
    # Without keep_std the call restarts from the initial std (mbrl-lib) and moves.
    planner = cem(_config(num_samples=16, num_elites=4, num_iterations=1, keep_std=False))
    _, new_state, _ = planner.plan(state, jax.random.key(2), _quadratic(jnp.zeros(2)))
    assert not np.allclose(new_state.mean, start)


def test_defaults():
    # mbrl-lib's pets_cartpole population, elites and iterations; a wider initial spread,
    # no smoothing and the std kept between calls (mbrl-lib: 1/4, 0.1, restart), so that an
    # optimum on the bounds is reached as closely as one inside (test_planners_bounds.py).
    config = _config()
    assert (config.num_samples, config.num_elites, config.num_iterations) == (350, 35, 5)
    assert config.alpha == 0.0 and config.return_mean_elites and config.keep_std
    assert config.sampling == "clipped"
    np.testing.assert_allclose(config.initial_std(), [[2 * 0.5, 1 * 0.5]] * 3)
    mbrl = _config(init_std_fraction=0.25)
    np.testing.assert_allclose(mbrl.initial_std() ** 2, [[4 / 16, 1 / 16]] * 3)
    state = cem(config).init()
    np.testing.assert_allclose(state.mean, [[0.0, 0.5]] * 3)
    np.testing.assert_allclose(state.std, config.initial_std())


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(horizon=0), "horizon"),
        (dict(action_low=(1.0, 0.0), action_high=(0.0, 1.0)), "action_low"),
        (dict(num_samples=0), "num_samples"),
        (dict(num_elites=0), "num_elites"),
        (dict(num_samples=10, num_elites=11), "num_elites"),
        (dict(num_iterations=0), "num_iterations"),
        (dict(alpha=1.0), "alpha"),
        (dict(alpha=-0.1), "alpha"),
        (dict(alpha=float("nan")), "alpha"),
        (dict(alpha=True), "alpha"),
        (dict(init_std_fraction=0.0), "init_std_fraction"),
        (dict(init_std_fraction=-0.25), "init_std_fraction"),
        (dict(init_std_fraction=float("inf")), "init_std_fraction"),
    ],
)
def test_invalid_configuration_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _config(**kwargs)


def test_config_is_hashable_and_wrong_config_type_rejected():
    assert hash(_config()) == hash(_config())
    with pytest.raises(TypeError, match="CEMConfig"):
        cem(object())


def test_fields_after_the_bounds_keep_their_positions():
    # init_std_fraction lives on the shared GaussianPlannerConfig; keyword-only, it does not
    # shift CEM's own fields, so a positional population stays the population.
    config = CEMConfig(4, (-1.0,), (1.0,), 64, 8)
    assert (config.num_samples, config.num_elites, config.init_std_fraction) == (64, 8, 0.5)
