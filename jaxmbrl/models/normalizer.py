"""Input and target statistics of a dynamics model, kept as a pytree next to its parameters.

The model sees normalised inputs ``(x - in_mean) / in_std`` with ``x = concat(obs, action)``
(``[X]``), and is trained on normalised targets ``(y - out_mean) / out_std`` with
``y = concat(obs' - obs, reward)`` (``[Y]``). :mod:`jaxmbrl.models.ensemble` applies both
inside its prediction functions, so callers always work in real units.

Statistics are fitted with an ``[L] bool`` mask, so a fixed-capacity replay buffer can be passed
as is; rows with ``False`` do not count. A feature whose standard deviation is below
``min_std`` (a constant feature) gets ``std = 1``, as in mbrl-lib's normaliser, so it is passed
through centred instead of being blown up.
"""

from __future__ import annotations

import chex
import jax.numpy as jnp
from flax import struct

from jaxmbrl.types import Array


@struct.dataclass
class NormalizerState:
    """Input and target statistics (all ``float32``).

    Attributes:
      in_mean: ``[X] float32`` mean of the model input ``concat(obs, action)``.
      in_std: ``[X] float32`` its standard deviation (``> 0``).
      out_mean: ``[Y] float32`` mean of the target ``concat(obs' - obs, reward)``.
      out_std: ``[Y] float32`` its standard deviation (``> 0``).
    """

    in_mean: Array  # [X]
    in_std: Array  # [X]
    out_mean: Array  # [Y]
    out_std: Array  # [Y]


def identity(input_dim: int, output_dim: int) -> NormalizerState:
    """Statistics that change nothing: zero means and unit standard deviations."""
    return NormalizerState(
        in_mean=jnp.zeros((input_dim,), jnp.float32),
        in_std=jnp.ones((input_dim,), jnp.float32),
        out_mean=jnp.zeros((output_dim,), jnp.float32),
        out_std=jnp.ones((output_dim,), jnp.float32),
    )


def masked_mean_std(x: Array, mask: Array | None = None, min_std: float = 1e-6):
    """Per-feature mean and standard deviation of the rows of ``x`` where ``mask`` is true.

    Two passes (mean, then the mean squared deviation) in float32, which is accurate for the
    sizes of a replay buffer. With no valid row the result is ``(0, 1)``.

    Args:
      x: ``[L, F] float`` data.
      mask: ``[L] bool`` valid rows, or ``None`` for all.
      min_std: standard deviations below this are replaced by 1.

    Returns:
      ``(mean [F] float32, std [F] float32)``.
    """
    chex.assert_rank(x, 2)
    x = x.astype(jnp.float32)
    if mask is None:
        w = jnp.ones((x.shape[0],), jnp.float32)
    else:
        chex.assert_shape(mask, (x.shape[0],))
        w = mask.astype(jnp.float32)
    keep = w[:, None] > 0
    x = jnp.where(keep, x, 0.0)  # masked rows may hold NaN; 0 * NaN would still be NaN
    n = jnp.maximum(jnp.sum(w), 1.0)
    mean = jnp.sum(x * w[:, None], axis=0) / n
    var = jnp.sum(jnp.where(keep, jnp.square(x - mean[None]), 0.0) * w[:, None], axis=0) / n
    std = jnp.sqrt(var)
    std = jnp.where(std < min_std, 1.0, std)
    return mean, std


def fit(inputs: Array, targets: Array, mask: Array | None = None) -> NormalizerState:
    """Fit input and target statistics from data.

    Args:
      inputs: ``[L, X] float`` model inputs ``concat(obs, action)``.
      targets: ``[L, Y] float`` targets ``concat(obs' - obs, reward)``.
      mask: ``[L] bool`` valid rows, or ``None`` for all.

    Returns:
      The fitted :class:`NormalizerState`.
    """
    chex.assert_rank([inputs, targets], 2)
    chex.assert_equal_shape_prefix([inputs, targets], 1)
    in_mean, in_std = masked_mean_std(inputs, mask)
    out_mean, out_std = masked_mean_std(targets, mask)
    return NormalizerState(in_mean=in_mean, in_std=in_std, out_mean=out_mean, out_std=out_std)


def _lift(v: Array, x: Array) -> Array:
    """``v [F]`` reshaped to broadcast against ``x [..., F]`` explicitly (no rank promotion)."""
    return v.reshape((1,) * (x.ndim - 1) + v.shape)


def normalize_inputs(norm: NormalizerState, x: Array) -> Array:
    """``[..., X]`` real inputs to normalised inputs."""
    return (x - _lift(norm.in_mean, x)) / _lift(norm.in_std, x)


def normalize_targets(norm: NormalizerState, y: Array) -> Array:
    """``[..., Y]`` real targets to normalised targets."""
    return (y - _lift(norm.out_mean, y)) / _lift(norm.out_std, y)


def denormalize_mean(norm: NormalizerState, y: Array) -> Array:
    """``[..., Y]`` normalised predicted means to real units."""
    return y * _lift(norm.out_std, y) + _lift(norm.out_mean, y)


def denormalize_var(norm: NormalizerState, var: Array) -> Array:
    """``[..., Y]`` normalised predicted variances to real units (scaled by ``out_std**2``)."""
    return var * _lift(jnp.square(norm.out_std), var)


__all__ = [
    "NormalizerState",
    "denormalize_mean",
    "denormalize_var",
    "fit",
    "identity",
    "masked_mean_std",
    "normalize_inputs",
    "normalize_targets",
]
