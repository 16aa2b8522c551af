"""Tests for jaxmbrl.models.checkpoint: exact round trip, clear mismatch errors, crash safety."""

from __future__ import annotations

import dataclasses
import os
from unittest import mock

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from orbax.checkpoint._src.handlers import json_checkpoint_handler

from jaxmbrl import models
from jaxmbrl.models import normalizer

CONFIG = models.EnsembleConfig(
    obs_dim=3,
    action_dim=1,
    num_members=3,
    num_elites=2,
    hidden_sizes=(16, 16),
    learn_reward=True,
    learn_logvar_bounds=True,
)


def _trained_like_state(seed):
    """A state with random (non-default) values in every leaf."""
    state = models.init(CONFIG, jax.random.key(seed))
    keys = jax.random.split(jax.random.key(seed + 1), 4)
    norm = normalizer.NormalizerState(
        in_mean=jax.random.normal(keys[0], (4,)),
        in_std=jnp.exp(jax.random.normal(keys[1], (4,))),
        out_mean=jax.random.normal(keys[2], (4,)),
        out_std=jnp.exp(jax.random.normal(keys[3], (4,))),
    )
    params = dict(state.params, max_logvar=state.params["max_logvar"] + 0.123)
    return state.replace(params=params, normalizer=norm, elite_idx=jnp.array([2, 0], jnp.int32))


def _assert_bit_exact(a, b):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb
    for x, y in zip(la, lb, strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def test_round_trip_is_bit_exact(tmp_path):
    state = _trained_like_state(0)
    step = models.save(tmp_path / "ckpt", CONFIG, state)
    assert step == 0
    config, restored = models.load(tmp_path / "ckpt", CONFIG)
    assert config == CONFIG
    assert isinstance(restored, models.EnsembleState)
    _assert_bit_exact(state, restored)
    # Without an expected config, the saved one is returned.
    config2, restored2 = models.load(tmp_path / "ckpt")
    assert config2 == CONFIG
    _assert_bit_exact(state, restored2)
    # The restored model predicts exactly the same.
    obs, act = jnp.ones((5, 3)), jnp.ones((5, 1))
    _assert_bit_exact(
        models.predict(CONFIG, state, obs, act), models.predict(config, restored, obs, act)
    )


def test_mismatched_config_errors_clearly(tmp_path):
    models.save(tmp_path, CONFIG, _trained_like_state(0))
    wrong = dataclasses.replace(CONFIG, hidden_sizes=(32, 16), num_elites=1)
    with pytest.raises(ValueError, match=r"hidden_sizes: saved \(16, 16\), given \(32, 16\)") as e:
        models.load(tmp_path, wrong)
    assert "num_elites" in str(e.value)
    with pytest.raises(ValueError, match="hidden_0"):
        models.save(tmp_path, wrong, _trained_like_state(0))  # state does not fit config
    with pytest.raises(FileNotFoundError):
        models.load(tmp_path / "nothing-here")


def test_interrupted_write_keeps_previous_checkpoint(tmp_path):
    first, second = _trained_like_state(0), _trained_like_state(5)
    models.save(tmp_path, CONFIG, first)

    def crash(*args, **kwargs):
        raise OSError("simulated crash in the middle of writing")

    # The state arrays are being written when the metadata write fails.
    with mock.patch.object(json_checkpoint_handler.JsonCheckpointHandler, "_save_fn", crash):
        with pytest.raises(OSError, match="simulated crash"):
            models.save(tmp_path, CONFIG, second)
    assert any("tmp" in name for name in os.listdir(tmp_path))  # the partial write is there
    assert models.checkpoint.latest_step(tmp_path) == 0
    _assert_bit_exact(first, models.load(tmp_path, CONFIG)[1])

    # The next save succeeds and becomes the latest; old steps beyond `keep` are pruned.
    assert models.save(tmp_path, CONFIG, second) == 1
    _assert_bit_exact(second, models.load(tmp_path, CONFIG)[1])
    _assert_bit_exact(first, models.load(tmp_path, CONFIG, step=0)[1])
    models.save(tmp_path, CONFIG, first)
    assert sorted(n for n in os.listdir(tmp_path) if n.isdigit()) == ["1", "2"]
    with pytest.raises(ValueError, match="already exists"):
        models.save(tmp_path, CONFIG, first, step=2)
