"""iCEM: colored noise, the population schedule and its masks, the optimum, configuration."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl.planners import ICEMConfig, colored_noise, icem
from jaxmbrl.planners.icem import active_candidates


def _config(**kw):
    base = dict(horizon=3, action_low=(-1.0, 0.0), action_high=(1.0, 1.0))
    base.update(kw)
    return ICEMConfig(**base)


def _quadratic(target):
    def objective(key, actions):
        del key
        return -jnp.sum((actions - target[None, None]) ** 2, axis=(1, 2))

    return objective


def _numpy_powerlaw_psd_gaussian(exponent, real, imag, horizon):
    """``colorednoise.powerlaw_psd_gaussian`` (fmin=0) given its two normal draws ``[..., F]``."""
    f = np.fft.rfftfreq(horizon)
    s_scale = f.copy()
    fmin = 1.0 / horizon
    ix = np.sum(s_scale < fmin)
    if ix and ix < len(s_scale):
        s_scale[:ix] = s_scale[ix]
    s_scale = s_scale ** (-exponent / 2.0)
    w = s_scale[1:].copy()
    w[-1] *= (1 + (horizon % 2)) / 2.0
    sigma = 2 * np.sqrt(np.sum(w**2)) / horizon
    sr = real * s_scale
    si = imag * s_scale
    if not horizon % 2:
        si[..., -1] = 0
        sr[..., -1] *= np.sqrt(2)
    si[..., 0] = 0
    sr[..., 0] *= np.sqrt(2)
    return np.fft.irfft(sr + 1j * si, n=horizon, axis=-1) / sigma


@pytest.mark.parametrize(("exponent", "horizon"), [(2.0, 10), (1.0, 7)])
def test_colored_noise_equals_numpy_colorednoise_for_the_same_draws(exponent, horizon):
    key = jax.random.key(0)
    n, a = 64, 3
    x = colored_noise(key, exponent, (n, horizon, a))
    assert x.shape == (n, horizon, a) and x.dtype == jnp.float32
    real_key, imag_key = jax.random.split(key)
    spectrum = (n, a, horizon // 2 + 1)
    real = np.asarray(jax.random.normal(real_key, spectrum), np.float64)
    imag = np.asarray(jax.random.normal(imag_key, spectrum), np.float64)
    expected = _numpy_powerlaw_psd_gaussian(exponent, real, imag, horizon).transpose(0, 2, 1)
    np.testing.assert_allclose(x, expected, rtol=1e-4, atol=1e-5)


def test_colored_noise_has_a_power_law_spectrum_over_time():
    h = 16
    for exponent in (1.0, 2.0):
        x = np.asarray(colored_noise(jax.random.key(1), exponent, (4000, h, 1)))[..., 0]
        power = np.mean(np.abs(np.fft.rfft(x, axis=1)) ** 2, axis=0)  # [F]
        np.testing.assert_allclose(power[4] / power[1], 4.0**-exponent, rtol=0.15)
    # Red noise is smoother than white noise: strong lag-1 correlation.
    x = np.asarray(colored_noise(jax.random.key(2), 2.0, (4000, h, 1)))[..., 0]
    assert np.corrcoef(x[:, 1:].ravel(), x[:, :-1].ravel())[0, 1] > 0.5


@pytest.mark.parametrize(("exponent", "horizon"), [(0.0, 8), (2.0, 1)])
def test_colored_noise_is_white_without_exponent_or_time(exponent, horizon):
    x = np.asarray(colored_noise(jax.random.key(3), exponent, (20000, horizon, 2)))
    assert np.all(np.isfinite(x))
    np.testing.assert_allclose(x.std(), 1.0, rtol=0.02)
    if horizon > 1:
        assert abs(np.corrcoef(x[:, 1:].ravel(), x[:, :-1].ravel())[0, 1]) < 0.02


def test_population_schedule_and_defaults_match_mbrl_lib():
    config = _config()  # pets_icem_cartpole: 200, 20 elites, decay 1.3, keep 0.3, beta 2
    assert (config.num_samples, config.num_elites, config.num_iterations) == (200, 20, 5)
    assert config.alpha == 0.1 and config.colored_noise_exponent == 2.0
    assert config.init_std_fraction == 0.25  # variance (high - low)**2 / 16
    assert not config.return_mean_elites
    assert config.population_sizes() == (200, 154, 119, 92, 71)
    assert config.num_kept_elites == 6  # ceil(0.3 * 20)
    assert config.num_candidates == 200 + 6 + 1
    # The 2 * K floor.
    assert _config(num_samples=10, num_elites=8).population_sizes() == (16,) * 5


def test_active_candidates_mask_unused_slots():
    config = _config(num_samples=10, num_elites=2, num_iterations=3, population_decay=2.0)
    assert config.population_sizes() == (10, 5, 4)
    assert config.num_kept_elites == 1 and config.num_candidates == 12

    def mask(i, has_elites):
        return np.asarray(active_candidates(config, jnp.int32(i), jnp.array(has_elites)))

    fresh = lambda n: [True] * n + [False] * (10 - n)
    np.testing.assert_array_equal(mask(0, False), [*fresh(10), False, False])
    np.testing.assert_array_equal(mask(0, True), [*fresh(10), True, False])
    np.testing.assert_array_equal(mask(1, False), [*fresh(5), True, False])
    np.testing.assert_array_equal(mask(2, False), [*fresh(4), True, True])


def test_masked_candidates_never_become_elites():
    def objective(bonus):
        """Scores ``1e6`` for the candidate slots where ``bonus [N_max]`` is set."""

        def score(key, actions):
            return jnp.where(bonus, 1e6, _quadratic(jnp.zeros(2))(key, actions))

        return score

    def slots(config, indices):
        return jnp.isin(jnp.arange(config.num_candidates), jnp.asarray(indices))

    # [10 fresh | 1 kept | 1 mean]; only 5 fresh samples at the last iteration, so fresh
    # slots 5..9 must not supply any of its elites.
    config = _config(
        num_samples=10,
        num_elites=2,
        num_iterations=2,
        population_decay=2.0,
        return_mean_elites=True,
        fixed_shapes=True,
    )
    planner = icem(config)
    _, _, info = planner.plan(planner.init(), jax.random.key(0), objective(slots(config, [5, 9])))
    assert float(info.expected_return) < 1e3
    # The kept-elite slot (10) is unused on the first call of a one-iteration planner, and
    # used once the state carries elites (with one iteration both layouts are the same).
    config = _config(num_samples=10, num_elites=2, num_iterations=1)
    planner = icem(config)
    plan = jax.jit(lambda s, k, bonus: planner.plan(s, k, objective(bonus)))
    kept_slot = slots(config, [10])
    _, state, info = plan(planner.init(), jax.random.key(1), kept_slot)
    assert float(info.expected_return) < 1e3
    assert bool(state.has_elites)
    _, _, info = plan(planner.shift(state), jax.random.key(2), kept_slot)
    assert float(info.expected_return) == 1e6


@pytest.mark.parametrize("return_mean_elites", [False, True])
def test_finds_optimum_of_concave_objective(return_mean_elites):
    # (Un-jitted planning is compared with jitted planning in test_planners_invariants.py.)
    planner = icem(
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
    assert state.elites.shape == (3, 3, 2)  # ceil(0.3 * 10) kept elites
    # The kept elites are the last iteration's best, best first.
    kept_returns = np.asarray(_quadratic(target)(None, state.elites))
    assert np.all(np.diff(kept_returns) <= 0)


def test_without_kept_elites():
    planner = icem(_config(num_samples=20, num_elites=4, num_iterations=3, keep_elite_frac=0.0))
    state = planner.init()
    assert state.elites.shape == (0, 3, 2)
    step = jax.jit(lambda s, k: planner.plan(s, k, _quadratic(jnp.array([0.3, 0.6]))))
    for i in range(2):
        action, state, _ = step(state, jax.random.key(i))
        state = planner.shift(state)
    assert np.all(np.isfinite(action))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(horizon=0), "horizon"),
        (dict(action_low=(1.0, 0.0), action_high=(0.0, 1.0)), "action_low"),
        (dict(num_samples=0), "num_samples"),
        (dict(num_samples=10, num_elites=11), "num_elites"),
        (dict(num_iterations=0), "num_iterations"),
        (dict(alpha=1.0), "alpha"),
        (dict(init_std_fraction=0.0), "init_std_fraction"),
        (dict(population_decay=0.9), "population_decay"),
        (dict(population_decay=float("inf")), "population_decay"),
        (dict(colored_noise_exponent=-1.0), "colored_noise_exponent"),
        (dict(keep_elite_frac=1.5), "keep_elite_frac"),
        (dict(keep_elite_frac=-0.1), "keep_elite_frac"),
    ],
)
def test_invalid_configuration_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _config(**kwargs)


@pytest.mark.parametrize("return_mean_elites", [False, True])
def test_unrolled_and_fixed_shape_layouts_agree(return_mean_elites):
    # Same samples from the same key; with a deterministic objective the plans are equal,
    # on the first call (no kept elites yet) and on a warm-started second call.
    kwargs = dict(
        num_samples=30, num_elites=4, num_iterations=3, return_mean_elites=return_mean_elites
    )
    objective = _quadratic(jnp.array([0.3, -0.6]))
    results = {}
    for fixed in (False, True):
        planner = icem(_config(**kwargs, fixed_shapes=fixed))
        step = jax.jit(lambda s, k, p=planner: p.plan(s, k, objective))
        _, state, _ = step(planner.init(), jax.random.key(0))
        results[fixed] = step(planner.shift(state), jax.random.key(1))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6),
        results[False],
        results[True],
    )


def test_unrolled_layout_scores_each_iterations_population():
    config = _config()  # mbrl-lib's pets_icem_cartpole settings
    assert config.candidates_per_call() == 200 + 154 + 119 + 92 + 71 + 5 * 6 + 1 == 667
    assert dataclasses.replace(config, fixed_shapes=True).candidates_per_call() == 5 * 207
    sizes = []

    def objective(key, actions):
        sizes.append(actions.shape[0])
        return -jnp.sum(actions**2, axis=(1, 2))

    planner = icem(config)
    planner.plan(planner.init(), jax.random.key(0), objective)
    assert sizes == [206, 160, 125, 98, 78]
