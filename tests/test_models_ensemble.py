"""Tests for jaxmbrl.models.ensemble: config validation, shapes/dtypes, the grouped path."""

from __future__ import annotations

import contextlib
import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl import models
from jaxmbrl.models import ensemble, normalizer

O, A = 3, 1  # noqa: E741 -- the shape legend's letters


def _config(**kw):
    base = dict(obs_dim=O, action_dim=A, num_members=4, num_elites=3, hidden_sizes=(16, 16))
    base.update(kw)
    return models.EnsembleConfig(**base)


def _state(config, seed=0):
    """A fresh ensemble with non-trivial normaliser statistics."""
    state = models.init(config, jax.random.key(seed))
    k1, k2, k3, k4 = jax.random.split(jax.random.key(seed + 100), 4)
    x, y = config.input_dim, config.output_dim
    norm = normalizer.NormalizerState(
        in_mean=jax.random.normal(k1, (x,)),
        in_std=jnp.exp(jax.random.normal(k2, (x,))),
        out_mean=jax.random.normal(k3, (y,)),
        out_std=jnp.exp(jax.random.normal(k4, (y,))),
    )
    return state.replace(normalizer=norm, elite_idx=jnp.array([2, 0, 3], jnp.int32))


def _inputs(shape, seed=1):
    ko, ka = jax.random.split(jax.random.key(seed))
    return jax.random.normal(ko, (*shape, O)), jax.random.normal(ka, (*shape, A))


def test_default_config_is_mbrl_lib_pets():
    c = models.EnsembleConfig(obs_dim=3, action_dim=1)
    assert (c.num_members, c.num_elites, c.hidden_sizes, c.activation) == (7, 5, (200,) * 4, "silu")
    assert (c.deterministic, c.min_logvar, c.max_logvar) == (False, -10.0, 0.5)
    assert (c.input_dim, c.output_dim) == (4, 3)
    assert dataclasses.replace(c, learn_reward=True).output_dim == 4
    hash(c)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("obs_dim", 0),
        ("action_dim", 1.5),
        ("num_members", 0),
        ("num_elites", 5),  # > num_members (4)
        ("hidden_sizes", (16, 0)),
        ("hidden_sizes", 7),
        ("activation", "sigmoidish"),
        ("deterministic", 1),
        ("min_logvar", float("nan")),
        ("max_logvar", -20.0),  # below min_logvar
    ],
)
def test_bad_config_raises_naming_field(field, value):
    with pytest.raises(ValueError, match=field.split("[")[0]):
        _config(**{field: value})


def test_params_stacked_on_member_axis():
    config = _config()
    state = models.init(config, jax.random.key(0))
    for leaf in jax.tree.leaves(state.params):
        assert leaf.shape[0] == config.num_members
        assert leaf.dtype == jnp.float32
    kernel = state.params["net"]["hidden_0"]["kernel"]
    chex.assert_shape(kernel, (4, O + A, 16))
    # Members are initialised differently.
    assert not np.allclose(kernel[0], kernel[1])
    chex.assert_trees_all_equal(state.elite_idx, jnp.arange(3, dtype=jnp.int32))


@pytest.mark.parametrize("jit", [False, True])  # False: jax.disable_jit(), op by op
@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("learn_reward", [False, True])
def test_predict_shapes_and_dtypes(jit, deterministic, learn_reward):
    config = _config(deterministic=deterministic, learn_reward=learn_reward)
    state = _state(config)
    obs, action = _inputs((5, 2))
    with contextlib.nullcontext() if jit else jax.disable_jit():
        mean, var = models.predict(config, state, obs, action)
    y = O + int(learn_reward)
    chex.assert_shape([mean, var], (4, 5, 2, y))
    chex.assert_type([mean, var], jnp.float32)
    chex.assert_tree_all_finite((mean, var))
    if deterministic:
        np.testing.assert_array_equal(var, 0.0)
    else:
        assert np.all(var > 0)


def test_predict_matches_numpy_reference():
    """De-normalisation and the soft log-variance bounds against a hand-written forward."""
    config = _config(hidden_sizes=(8,), activation="tanh")
    state = _state(config)
    obs, action = _inputs((6,))
    mean, var = models.predict(config, state, obs, action)
    nz = jax.tree.map(np.asarray, state.normalizer)
    x = (np.concatenate([obs, action], -1) - nz.in_mean) / nz.in_std
    p = jax.tree.map(np.asarray, state.params["net"])
    for e in range(config.num_members):
        h = np.tanh(x @ p["hidden_0"]["kernel"][e] + p["hidden_0"]["bias"][e])
        out = h @ p["head"]["kernel"][e] + p["head"]["bias"][e]
        mu, lv = out[:, :O], out[:, O:]
        softplus = lambda z: np.log1p(np.exp(z))
        lv = 0.5 - softplus(0.5 - lv)
        lv = -10.0 + softplus(lv + 10.0)
        np.testing.assert_allclose(mean[e], mu * nz.out_std + nz.out_mean, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(var[e], np.exp(lv) * nz.out_std**2, rtol=1e-4, atol=1e-7)


def test_logvar_bounds_are_soft_limits():
    config = _config(min_logvar=-3.0, max_logvar=-1.0)
    state = models.init(config, jax.random.key(0))
    obs, action = _inputs((200,))
    _, var = models.predict(config, state, obs * 100.0, action * 100.0)  # extreme inputs
    lv = np.log(var)  # identity normaliser: real == normalised units
    # PETS' squashing: max - softplus(max - lv), then min + softplus(. - min), so the upper
    # limit is min + softplus(max - min) (soft, slightly above max).
    upper = -3.0 + np.log1p(np.exp(2.0))
    assert lv.min() >= -3.0 - 1e-5 and lv.max() <= upper + 1e-5
    assert lv.min() < -2.9 and lv.max() > upper - 0.1  # extreme inputs saturate


def test_learned_logvar_bounds_are_per_member_params():
    config = _config(learn_logvar_bounds=True)
    state = models.init(config, jax.random.key(0))
    chex.assert_shape([state.params["min_logvar"], state.params["max_logvar"]], (4, O))
    assert "min_logvar" not in models.init(_config(), jax.random.key(0)).params


@pytest.mark.parametrize("jit", [False, True])
def test_predict_grouped_uses_elite_members(jit):
    config = _config()
    state = _state(config)
    obs, action = _inputs((3, 7))
    with contextlib.nullcontext() if jit else jax.disable_jit():
        mean, var = models.predict_grouped(config, state, obs, action)
    chex.assert_shape([mean, var], (3, 7, O))
    chex.assert_type([mean, var], jnp.float32)
    full_mean, full_var = models.predict(config, state, obs, action)  # [E, K, R, Y]
    for k, member in enumerate([2, 0, 3]):
        np.testing.assert_allclose(mean[k], full_mean[member, k], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(var[k], full_var[member, k], rtol=1e-5, atol=1e-9)
    # The batched alternative computes the same thing.
    x = ensemble._inputs(state, obs, action)
    loop = jax.jit(lambda p, e, x: ensemble._grouped_normalized(config, p, e, x)[0])
    batched = jax.jit(lambda p, e, x: ensemble._grouped_normalized_batched(config, p, e, x)[0])
    m1 = loop(state.params, state.elite_idx, x)
    m2 = batched(state.params, state.elite_idx, x)
    np.testing.assert_allclose(m1, m2, rtol=1e-5, atol=1e-6)


def test_predict_grouped_under_vmap():
    config = _config()
    state = _state(config)
    obs, action = _inputs((2, 3, 7))
    mean, _ = jax.vmap(lambda o, a: models.predict_grouped(config, state, o, a))(obs, action)
    chex.assert_shape(mean, (2, 3, 7, O))
    one, _ = models.predict_grouped(config, state, obs[1], action[1])
    np.testing.assert_allclose(mean[1], one, rtol=1e-5, atol=1e-6)


def test_shape_errors_are_clear():
    config = _config()
    state = _state(config)
    obs, action = _inputs((5,))
    with pytest.raises(AssertionError):
        models.predict(config, state, obs[:, :2], action)
    with pytest.raises(ValueError, match="leading shape"):
        models.predict(config, state, obs, action[:4])
    with pytest.raises(ValueError, match="elites"):
        models.predict_grouped(config, state, *_inputs((4, 2)))  # 4 groups, 3 elites
    with pytest.raises(AssertionError):
        models.predict_grouped(config, state, obs, action)  # rank 2, needs [K, R, .]


def test_sample_and_disagreement():
    config = _config(learn_reward=True)
    state = _state(config)
    obs, action = _inputs((3, 5))
    key = jax.random.key(3)
    next_obs, reward = models.sample(config, state, key, obs[0], action[0])
    chex.assert_shape(next_obs, (4, 5, O))
    chex.assert_shape(reward, (4, 5))
    mean, _ = models.predict(config, state, obs[0], action[0])
    det_obs, det_r = models.sample(config, state, key, obs[0], action[0], deterministic=True)
    np.testing.assert_allclose(det_obs, obs[None, 0] + mean[..., :O], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(det_r, mean[..., O], rtol=1e-6)
    # Samples are spread around the mean with the predicted variance.
    big_obs = jnp.broadcast_to(obs[0, :1], (4000, O))
    big_act = jnp.broadcast_to(action[0, :1], (4000, A))
    s_obs, _ = models.sample(config, state, key, big_obs, big_act)
    m, v = models.predict(config, state, big_obs[:1], big_act[:1])
    np.testing.assert_allclose(
        s_obs.mean(1), big_obs[:1] + m[:, 0, :O], atol=0.2 * np.sqrt(v.max())
    )
    np.testing.assert_allclose(s_obs.var(1), v[:, 0, :O], rtol=0.15)

    g_obs, g_r = models.sample_grouped(config, state, key, obs, action)
    chex.assert_shape(g_obs, (3, 5, O))
    chex.assert_shape(g_r, (3, 5))

    d = models.disagreement(config, state, obs, action)
    chex.assert_shape(d, (3, 5, O + 1))
    np.testing.assert_allclose(
        d, jnp.std(models.predict(config, state, obs, action)[0][state.elite_idx], 0), rtol=1e-6
    )
    d_all = models.disagreement(config, state, obs, action, elites_only=False)
    chex.assert_shape(d_all, (3, 5, O + 1))


def test_deterministic_sample_ignores_key():
    config = _config(deterministic=True)
    state = _state(config)
    obs, action = _inputs((5,))
    a, _ = models.sample(config, state, jax.random.key(0), obs, action)
    b, _ = models.sample(config, state, jax.random.key(1), obs, action)
    np.testing.assert_array_equal(a, b)


def test_bfloat16_matmuls_stay_close_to_float32_and_output_float32():
    """Same parameters, bfloat16 matmul operands: float32 outputs, rounding-sized changes.

    Measured on this fresh (untrained) model with seeds 0..3: relative error of the means
    (Frobenius norm) 3.6e-3 .. 4.6e-3, largest relative variance change 2.6e-4 .. 4.5e-4.
    The bounds sit about 2x and 4x above. A trained model planning in bfloat16 is checked in
    ``test_models_training.py``.
    """
    config = models.EnsembleConfig(obs_dim=3, action_dim=1, hidden_sizes=(64, 64))
    state = models.init(config, jax.random.key(0))
    obs = jax.random.normal(jax.random.key(1), (5, 64, 3))
    action = jax.random.normal(jax.random.key(2), (5, 64, 1))
    mean32, var32 = models.predict_grouped(config, state, obs, action)
    bf16 = dataclasses.replace(config, matmul_dtype="bfloat16")
    mean16, var16 = models.predict_grouped(bf16, state, obs, action)  # same parameters
    assert mean16.dtype == var16.dtype == jnp.float32
    rel = float(jnp.linalg.norm(mean16 - mean32) / jnp.linalg.norm(mean32))
    assert 0.0 < rel < 1e-2  # bfloat16 rounding (not a no-op), not a different model
    np.testing.assert_allclose(var16, var32, rtol=2e-3)
    with pytest.raises(ValueError, match="matmul_dtype"):
        dataclasses.replace(config, matmul_dtype="float16")
    assert models.EnsembleConfig.from_dict(bf16.to_dict()) == bf16
