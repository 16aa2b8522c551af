"""MPPI: weights, update and noise filter against NumPy, the optimum, configuration."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl.planners import MPPIConfig, mppi, mppi_update
from jaxmbrl.planners.mppi import low_pass, mppi_weights


def _config(**kw):
    base = dict(horizon=3, action_low=(-1.0, 0.0), action_high=(1.0, 1.0))
    base.update(kw)
    return MPPIConfig(**base)


def _quadratic(target):
    def objective(key, actions):
        del key
        return -jnp.sum((actions - target[None, None]) ** 2, axis=(1, 2))

    return objective


@pytest.mark.parametrize("use_jit", [False, True])
def test_update_equals_numpy_softmax_average(use_jit):
    rng = np.random.default_rng(0)
    n, temperature = 12, 0.7
    mean = rng.normal(size=(3, 2)).astype(np.float32)
    actions = rng.normal(size=(n, 3, 2)).astype(np.float32)
    returns = rng.normal(size=n).astype(np.float32) * 3
    returns[[1, 5]] = -np.inf  # diverged rollouts get weight 0
    update = lambda *args: mppi_update(*args, temperature)
    update = jax.jit(update) if use_jit else update
    new_mean, expected = update(mean, actions, returns)
    finite = np.isfinite(returns)
    z = np.where(finite, returns - returns[finite].max(), -np.inf) / temperature
    w = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(new_mean, np.einsum("n,nha->ha", w, actions), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(expected, np.sum(w[finite] * returns[finite]), rtol=1e-5)


def test_weights_are_stable_for_tiny_temperature_and_all_neg_inf():
    returns = jnp.array([1.0, 3.0, -jnp.inf, 2.0])
    np.testing.assert_allclose(mppi_weights(returns, 1e-30), [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(mppi_weights(jnp.full(4, -jnp.inf), 1.0), [0.25] * 4)
    # Huge returns do not overflow.
    w = mppi_weights(jnp.array([3e38, -3e38, 0.0]), 1e-3)
    np.testing.assert_allclose(w, [1.0, 0.0, 0.0])
    # No finite return: the mean stays where it was.
    mean = jnp.full((3, 2), 0.25)
    new_mean, expected = mppi_update(mean, jnp.ones((4, 3, 2)), jnp.full(4, -jnp.inf), 1.0)
    np.testing.assert_array_equal(new_mean, mean)
    assert expected == -np.inf


def test_low_pass_equals_numpy_filter():
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(5, 6, 2)).astype(np.float32)
    beta = 0.7
    expected = np.zeros_like(noise)
    u = np.zeros((5, 2), np.float32)
    for t in range(6):
        u = beta * noise[:, t] + (1 - beta) * u
        expected[:, t] = u
    np.testing.assert_allclose(low_pass(jnp.asarray(noise), beta), expected, rtol=1e-6)
    np.testing.assert_array_equal(low_pass(jnp.asarray(noise), 1.0), noise)


def test_finds_optimum_of_concave_objective():
    # MPPI's mean is a weighted average of noisy samples, so its error floor is about
    # noise_sigma / sqrt(N): a small sigma, a temperature matched to it (2 * sigma**2) and
    # enough samples and iterations to walk from the midpoint to the target.
    sigma = 0.01
    planner = mppi(
        _config(num_samples=2048, num_iterations=30, noise_sigma=sigma, temperature=2 * sigma**2)
    )
    target = jnp.array([0.3, 0.6])
    plan = jax.jit(lambda s, k: planner.plan(s, k, _quadratic(target)))
    action, state, info = plan(planner.init(), jax.random.key(0))
    np.testing.assert_allclose(info.solution, np.broadcast_to(target, (3, 2)), atol=1e-3)
    np.testing.assert_allclose(action, target, atol=1e-3)
    np.testing.assert_array_equal(state.mean, info.solution)
    assert -1e-3 < float(info.expected_return) <= 0.0


def test_warm_start_continues_from_the_stored_mean():
    planner = mppi(_config(num_samples=64, num_iterations=1, noise_sigma=0.05, temperature=5e-3))
    target = jnp.array([0.3, 0.6])
    plan = jax.jit(lambda s, k: planner.plan(s, k, _quadratic(target)))
    state = planner.init()
    errors = []
    for i in range(6):
        _, state, info = plan(state, jax.random.key(i))
        errors.append(float(np.abs(info.solution - target[None]).max()))
    assert errors[-1] < 0.5 * errors[0]


def test_defaults_are_mbrl_lib_mppi():
    config = _config()
    assert (config.num_samples, config.num_iterations) == (350, 5)
    assert config.noise_sigma == 1.0 and config.beta == 0.9
    np.testing.assert_allclose(1 / config.temperature, 0.9)  # mbrl-lib's gamma


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(horizon=0), "horizon"),
        (dict(action_low=(1.0, 0.0), action_high=(0.0, 1.0)), "action_low"),
        (dict(num_samples=0), "num_samples"),
        (dict(num_iterations=0), "num_iterations"),
        (dict(temperature=0.0), "temperature"),
        (dict(temperature=-1.0), "temperature"),
        (dict(temperature=float("inf")), "temperature"),
        (dict(noise_sigma=0.0), "noise_sigma"),
        (dict(beta=0.0), "beta"),
        (dict(beta=1.5), "beta"),
    ],
)
def test_invalid_configuration_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _config(**kwargs)
