"""Tests for jaxmbrl.models.normalizer: masked statistics against NumPy."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np

from jaxmbrl.models import normalizer


def test_masked_mean_std_matches_numpy_and_ignores_garbage():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(50, 4)).astype(np.float32)
    x[:, 3] = 7.0  # constant feature -> std 1
    mask = rng.random(50) < 0.6
    garbage = x.copy()
    garbage[~mask] = np.nan
    mean, std = jax.jit(normalizer.masked_mean_std)(jnp.asarray(garbage), jnp.asarray(mask))
    chex.assert_shape([mean, std], (4,))
    chex.assert_type([mean, std], jnp.float32)
    np.testing.assert_allclose(mean, x[mask].mean(0), rtol=1e-5)
    np.testing.assert_allclose(std[:3], x[mask].std(0)[:3], rtol=1e-5)
    assert std[3] == 1.0


def test_fit_and_round_trip():
    rng = np.random.default_rng(1)
    inputs = jnp.asarray(rng.normal(size=(100, 4)) * [1, 10, 0.1, 5] + 2, jnp.float32)
    targets = jnp.asarray(rng.normal(size=(100, 3)) * 0.01, jnp.float32)
    state = normalizer.fit(inputs, targets)
    xn = normalizer.normalize_inputs(state, inputs)
    np.testing.assert_allclose(xn.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(xn.std(0), 1.0, rtol=1e-4)
    yn = normalizer.normalize_targets(state, targets)
    np.testing.assert_allclose(normalizer.denormalize_mean(state, yn), targets, atol=1e-6)
    np.testing.assert_allclose(
        normalizer.denormalize_var(state, jnp.ones(3)), np.asarray(state.out_std) ** 2
    )


def test_identity_and_empty_mask():
    state = normalizer.identity(4, 3)
    chex.assert_shape([state.in_mean, state.in_std], (4,))
    chex.assert_shape([state.out_mean, state.out_std], (3,))
    mean, std = normalizer.masked_mean_std(jnp.ones((5, 2)), jnp.zeros(5, bool))
    np.testing.assert_array_equal(mean, 0.0)
    np.testing.assert_array_equal(std, 1.0)
