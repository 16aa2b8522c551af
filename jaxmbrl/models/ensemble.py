"""A probabilistic ensemble of MLPs predicting the residual ``obs' - obs`` (PETS' model).

Every member is the same flax MLP; their parameters are stacked on a leading member axis
``E``, so all members run as one batched computation (``vmap`` over the stacked parameters)
and the ensemble is a plain pytree (:class:`EnsembleState`) that can be jitted, vmapped,
saved and restored. The model is a set of pure functions taking the static
:class:`EnsembleConfig` and the dynamic :class:`EnsembleState`:

* :func:`init` -- fresh parameters, identity normaliser, elites ``0..G-1``.
* :func:`predict` -- every member on the same inputs: per-member mean and variance in real
  units, ``[E, ..., Y]``.
* :func:`predict_grouped` -- the planning hot path: row group ``g`` of ``[G, R, ...]`` inputs
  goes through elite member ``elite_idx[g]`` only (PETS' TS1 / TS-infinity particles).
* :func:`sample`, :func:`sample_grouped` -- draw next observations (and rewards) from the
  predicted Gaussians.
* :func:`disagreement` -- the spread of the member means, the ensemble's epistemic
  uncertainty, for objectives that penalise or seek it.

The public functions are jitted with the configuration static (so eager callers get
compiled code; inside a caller's ``jit`` they simply inline). The network works in
normalised units (see :mod:`jaxmbrl.models.normalizer`); inputs are normalised and outputs
de-normalised inside these functions, so callers never do it by hand.
The target is ``y = concat(obs' - obs, reward)``; the reward column exists only with
``learn_reward=True``. The Gaussian head predicts a mean and a log-variance per target; the
log-variance is squashed softly into ``[min_logvar, max_logvar]`` as in PETS (Chua et al.
2018) and mbrl-lib: ``lv = max - softplus(max - lv); lv = min + softplus(lv - min)``. The bounds
are in normalised target units and, with ``learn_logvar_bounds=True``, are trained per member.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import struct

from jaxmbrl import onednn
from jaxmbrl.models import normalizer as norm_lib
from jaxmbrl.types import Array, PRNGKey, PyTree
from jaxmbrl.validation import check_at_most, check_choice, check_finite, check_positive_int

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {
    "silu": nn.silu,
    "swish": nn.silu,
    "relu": nn.relu,
    "elu": nn.elu,
    "gelu": nn.gelu,
    "tanh": nn.tanh,
    "leaky_relu": nn.leaky_relu,
}
"""Activation names accepted by :class:`EnsembleConfig`."""


def _bf16_dot_general(lhs, rhs, dimension_numbers, precision=None, preferred_element_type=None):
    """bfloat16 operands, float32 accumulation and result (a ``dot_general`` for flax)."""
    del precision, preferred_element_type
    return jax.lax.dot_general(
        lhs.astype(jnp.bfloat16),
        rhs.astype(jnp.bfloat16),
        dimension_numbers,
        preferred_element_type=jnp.float32,
    )


MATMUL_DTYPES = {"float32": jax.lax.dot_general, "bfloat16": _bf16_dot_general}
"""``EnsembleConfig.matmul_dtype`` names and the ``dot_general`` each uses."""


def resolve_matmul_dtype(matmul_dtype: str, dense_library: str = "auto") -> str:
    """A planning matmul dtype with ``"auto"`` resolved for this process (Python, before tracing).

    Args:
      matmul_dtype: ``"auto"`` or a name of :data:`MATMUL_DTYPES` (returned as it is).
      dense_library: the ensemble's ``EnsembleConfig.dense_library``.

    Returns:
      ``"float32"`` or ``"bfloat16"``. ``"auto"`` is ``"bfloat16"`` where a bfloat16 layer
      with ``dense_library`` runs through oneDNN here (:func:`jaxmbrl.onednn.resolve`) and
      oneDNN is the faster layer for bfloat16 on this CPU (:func:`jaxmbrl.onednn.fast_here`),
      else ``"float32"``. Measured on a 2-core AMD EPYC, CPU family 26
      model 2 (avx512_bf16), mbrl-lib's PETS planning workloads: bfloat16 through oneDNN
      planned 1.2-1.7x faster than float32 through XLA's dot on seven of eight, and its first
      actions moved 0.005 from float32's against the planner's own key-to-key 0.084. With
      XLA's dot bfloat16 was no faster than float32 there, hence float32 elsewhere.

    Raises:
      ValueError: an unknown dtype or library name.
    """
    check_choice("matmul_dtype", matmul_dtype, ("auto", *MATMUL_DTYPES))
    if matmul_dtype != "auto":
        return matmul_dtype
    if onednn.resolve(dense_library, "bfloat16") != "onednn":
        return "float32"
    # An explicit "onednn" (or JAXMBRL_DENSE=onednn) skips the CPU rule: ask it here.
    return "bfloat16" if onednn.fast_here("bfloat16") else "float32"


@dataclasses.dataclass(frozen=True)
class EnsembleConfig:
    """Static description of an ensemble (hashable; every shape-determining integer).

    Attributes:
      obs_dim: ``O``, the observation size (>= 1).
      action_dim: ``A``, the action size (>= 1).
      num_members: ``E``, ensemble members (>= 1; mbrl-lib's default 7).
      num_elites: ``G``, members used for planning after training (1..E; default 5).
      hidden_sizes: widths of the hidden layers (default 4 x 200); ``()`` is a linear model.
      activation: one of :data:`ACTIVATIONS` (default ``"silu"``).
      deterministic: ``True`` for a plain regression head (trained with MSE, variance 0);
        ``False`` for the Gaussian mean / log-variance head (trained with the Gaussian NLL).
      learn_reward: also predict the reward (``Y = O + 1``), for environments whose reward
        function is not known.
      reward_only: predict the reward alone (``Y = 1``; requires ``learn_reward``): a
        reward model ``r(obs, action)`` whose ``obs`` may be any features, e.g. PETS's
        separate reward model on ``concat(obs, next_obs)``. Its validation error (and so
        its elites and restarts) is the reward's alone.
      min_logvar, max_logvar: the soft log-variance bounds (normalised units) of the
        Gaussian head; ``min_logvar < max_logvar``.
      learn_logvar_bounds: train the bounds (one pair per member and target), with the PETS
        penalty ``0.01 * (sum(max_logvar) - sum(min_logvar))``.
      matmul_dtype: ``"float32"`` (default) or ``"bfloat16"``: the operand type of every
        layer's matmul. With ``"bfloat16"`` inputs and weights are rounded to bfloat16 and the
        products accumulate in float32 (``preferred_element_type``); parameters, biases,
        activations and outputs stay float32, so a model trained in float32 can plan in
        bfloat16 with ``dataclasses.replace(config, matmul_dtype="bfloat16")``.
      dense_library: what runs each layer's ``act(x @ W + b)``: ``"xla"`` (XLA's dot),
        ``"onednn"`` (the custom call of :mod:`jaxmbrl.onednn`; an error where it is not
        built) or ``"auto"`` (default: oneDNN on the CPU backend where it is built and
        measured or known faster for ``matmul_dtype`` on this CPU, else XLA;
        :func:`jaxmbrl.onednn.resolve`). Chosen when a function is traced. The two agree
        to rounding: ``tests/test_onednn.py`` holds the predictions within 1e-5 (float32)
        and 2e-2 (bfloat16 operands) of their scale.
    """

    obs_dim: int
    action_dim: int
    num_members: int = 7
    num_elites: int = 5
    hidden_sizes: tuple[int, ...] = (200, 200, 200, 200)
    activation: str = "silu"
    deterministic: bool = False
    learn_reward: bool = False
    reward_only: bool = False
    min_logvar: float = -10.0
    max_logvar: float = 0.5
    learn_logvar_bounds: bool = False
    matmul_dtype: str = "float32"
    dense_library: str = "auto"

    def __post_init__(self):
        check_positive_int("obs_dim", self.obs_dim)
        check_positive_int("action_dim", self.action_dim)
        check_positive_int("num_members", self.num_members)
        check_positive_int("num_elites", self.num_elites)
        check_at_most("num_elites", self.num_elites, "num_members", self.num_members)
        try:
            hidden = tuple(self.hidden_sizes)
        except TypeError as e:
            raise ValueError(
                f"hidden_sizes must be a sequence of ints, got {self.hidden_sizes!r}"
            ) from e
        for i, h in enumerate(hidden):
            check_positive_int(f"hidden_sizes[{i}]", h)
        object.__setattr__(self, "hidden_sizes", hidden)
        check_choice("activation", self.activation, tuple(sorted(ACTIVATIONS)))
        for name in ("deterministic", "learn_reward", "reward_only", "learn_logvar_bounds"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.reward_only and not self.learn_reward:
            raise ValueError("reward_only=True requires learn_reward=True")
        check_finite("min_logvar", self.min_logvar)
        check_finite("max_logvar", self.max_logvar)
        check_choice("matmul_dtype", self.matmul_dtype, tuple(sorted(MATMUL_DTYPES)))
        check_choice("dense_library", self.dense_library, onednn.LIBRARIES)
        if not self.min_logvar < self.max_logvar:
            raise ValueError(
                f"min_logvar must be < max_logvar, got min_logvar={self.min_logvar} and "
                f"max_logvar={self.max_logvar}"
            )

    @property
    def input_dim(self) -> int:
        """``X = O + A``, the model input size."""
        return self.obs_dim + self.action_dim

    @property
    def output_dim(self) -> int:
        """``Y``: ``O``, plus 1 with ``learn_reward``; 1 with ``reward_only``."""
        if self.reward_only:
            return 1
        return self.obs_dim + int(self.learn_reward)

    def to_dict(self) -> dict:
        """The configuration as a JSON-compatible dict (used by checkpoints)."""
        d = dataclasses.asdict(self)
        d["hidden_sizes"] = list(self.hidden_sizes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> EnsembleConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["hidden_sizes"] = tuple(d["hidden_sizes"])
        d.setdefault("matmul_dtype", "float32")  # checkpoints written before the field
        d.setdefault("reward_only", False)
        d.setdefault("dense_library", "auto")
        return cls(**d)


@struct.dataclass
class EnsembleState:
    """Everything a trained ensemble is, as a pytree.

    Attributes:
      params: the network parameters, every leaf with leading axis ``E``: ``params["net"]``
        is the flax MLP's parameter dict; with ``learn_logvar_bounds`` also
        ``params["min_logvar"]`` and ``params["max_logvar"]``, ``[E, Y] float32`` each.
      normalizer: the input / target statistics, a
        :class:`~jaxmbrl.models.normalizer.NormalizerState`.
      elite_idx: ``[G] int32`` indices of the elite members (lowest validation error first
        after training).
    """

    params: PyTree
    normalizer: norm_lib.NormalizerState
    elite_idx: Array  # [G] int32


def _kernel_scale(fan_in: int) -> float:
    """mbrl-lib's init: truncated normal (at 2 std) with ``std = 1 / (2 sqrt(fan_in))``."""
    return 1.0 / (2.0 * math.sqrt(fan_in))


def _kernel_init(key: PRNGKey, shape, dtype=jnp.float32) -> Array:
    return _kernel_scale(shape[0]) * jax.random.truncated_normal(key, -2.0, 2.0, shape, dtype)


class OnednnDense(nn.Module):
    """``nn.Dense``'s parameters (``kernel [in, out]``, ``bias [out]``) and, after it, the
    activation, run as one oneDNN custom call (:func:`jaxmbrl.onednn.dense`)."""

    features: int
    activation: str  # a name of ACTIVATIONS, or "none"
    matmul_dtype: str
    out_dtype: str  # "float32", or "bfloat16" for a hidden layer feeding a bfloat16 matmul

    @nn.compact
    def __call__(self, x: Array) -> Array:
        kernel = self.param("kernel", _kernel_init, (x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        fused = self.activation if self.activation in onednn.FUSED else "none"
        y = onednn.dense(
            x,
            kernel,
            bias,
            activation=fused,
            matmul_dtype=self.matmul_dtype,
            out_dtype=self.out_dtype if fused == self.activation else "float32",
        )
        return y if fused == self.activation else ACTIVATIONS[self.activation](y)


class MemberMLP(nn.Module):
    """One ensemble member: ``[B, X] -> [B, Y]`` (deterministic) or ``[B, 2 Y]`` (mean, logvar).

    ``dense_library`` is resolved (``"xla"`` or ``"onednn"``); both have the same parameters.
    """

    hidden_sizes: tuple[int, ...]
    activation: str
    out_features: int
    matmul_dtype: str = "float32"
    dense_library: str = "xla"

    @nn.compact
    def __call__(self, x: Array) -> Array:
        if self.dense_library == "onednn":
            # Hidden layers hand the next bfloat16 matmul bfloat16 values (XLA's path rounds
            # them at the next dot); the head returns float32.
            for i, h in enumerate(self.hidden_sizes):
                x = OnednnDense(
                    h, self.activation, self.matmul_dtype, self.matmul_dtype, name=f"hidden_{i}"
                )(x)
            head = OnednnDense(self.out_features, "none", self.matmul_dtype, "float32", name="head")
            return head(x)
        act = ACTIVATIONS[self.activation]
        dot = MATMUL_DTYPES[self.matmul_dtype]
        for i, h in enumerate(self.hidden_sizes):
            x = act(nn.Dense(h, kernel_init=_kernel_init, dot_general=dot, name=f"hidden_{i}")(x))
        return nn.Dense(self.out_features, kernel_init=_kernel_init, dot_general=dot, name="head")(
            x
        )


def _module(config: EnsembleConfig) -> MemberMLP:
    out = config.output_dim * (1 if config.deterministic else 2)
    library = onednn.resolve(config.dense_library, config.matmul_dtype)
    return MemberMLP(config.hidden_sizes, config.activation, out, config.matmul_dtype, library)


@functools.partial(jax.jit, static_argnames="config")
def init(config: EnsembleConfig, key: PRNGKey) -> EnsembleState:
    """Fresh ensemble parameters (mbrl-lib's init), identity normaliser, elites ``0..G-1``.

    Kernels are truncated normal (at 2 std) with ``std = 1 / (2 sqrt(fan_in))``, drawn
    independently for every member; biases are zero.

    Args:
      config: the ensemble configuration.
      key: PRNG key, consumed.

    Returns:
      An :class:`EnsembleState` whose ``params`` leaves have leading axis ``E``.
    """
    # One random draw for every kernel of every member, sliced up: each random call costs
    # about a second of XLA:CPU compile time, so a draw per layer (or a vmap over member
    # keys) would make `init` slow to compile. Same distribution as `_kernel_init`.
    module = _module(config)
    dummy = jnp.zeros((1, config.input_dim), jnp.float32)
    shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), dummy)["params"])
    leaves, treedef = jax.tree.flatten(shapes)
    e = config.num_members
    sizes = [e * math.prod(leaf.shape) if leaf.ndim == 2 else 0 for leaf in leaves]
    z = jax.random.truncated_normal(key, -2.0, 2.0, (sum(sizes),), jnp.float32)
    out, start = [], 0
    for leaf, size in zip(leaves, sizes, strict=True):
        if leaf.ndim == 2:  # a kernel [in, out]
            w = z[start : start + size].reshape((e, *leaf.shape))
            out.append(_kernel_scale(leaf.shape[0]) * w)
        else:  # a bias
            out.append(jnp.zeros((e, *leaf.shape), jnp.float32))
        start += size
    net = jax.tree.unflatten(treedef, out)
    params = {"net": net}
    if config.learn_logvar_bounds and not config.deterministic:
        shape = (config.num_members, config.output_dim)
        params["min_logvar"] = jnp.full(shape, config.min_logvar, jnp.float32)
        params["max_logvar"] = jnp.full(shape, config.max_logvar, jnp.float32)
    return EnsembleState(
        params=params,
        normalizer=norm_lib.identity(config.input_dim, config.output_dim),
        elite_idx=jnp.arange(config.num_elites, dtype=jnp.int32),
    )


def logvar_bounds(config: EnsembleConfig, member_params: PyTree) -> tuple[Array, Array]:
    """``(min_logvar, max_logvar)`` of one member (``[Y]`` each), learned or constant.

    ``member_params`` may also be the stacked parameters, giving ``[E, Y]`` each.
    """
    if "min_logvar" in member_params:
        return member_params["min_logvar"], member_params["max_logvar"]
    y = config.output_dim
    return (
        jnp.full((y,), config.min_logvar, jnp.float32),
        jnp.full((y,), config.max_logvar, jnp.float32),
    )


def member_forward(
    config: EnsembleConfig, member_params: PyTree, x_norm: Array
) -> tuple[Array, Array | None]:
    """One member on normalised inputs; outputs in normalised target units.

    Args:
      config: the ensemble configuration.
      member_params: one member's parameters (leaves without the ``E`` axis).
      x_norm: ``[B, X] float32`` normalised inputs (any rows).

    Returns:
      ``(mean [B, Y] float32, logvar [B, Y] float32)``; ``logvar`` is ``None`` for a
      deterministic head. The log-variance is softly bounded.
    """
    out = _module(config).apply({"params": member_params["net"]}, x_norm)
    if config.deterministic:
        return out, None
    y = config.output_dim
    mean, logvar = out[..., :y], out[..., y:]
    lo, hi = logvar_bounds(config, member_params)
    lo = lo.reshape((1,) * (logvar.ndim - 1) + lo.shape)
    hi = hi.reshape((1,) * (logvar.ndim - 1) + hi.shape)
    logvar = hi - jax.nn.softplus(hi - logvar)
    logvar = lo + jax.nn.softplus(logvar - lo)
    return mean, logvar


def forward_normalized(
    config: EnsembleConfig, params: PyTree, x_norm: Array
) -> tuple[Array, Array | None]:
    """All members on normalised inputs (the training forward pass).

    Args:
      config: the ensemble configuration.
      params: stacked parameters (leading axis ``E``).
      x_norm: ``[E, B, X]`` (member ``e`` gets ``x_norm[e]``) or ``[B, X]`` (shared).

    Returns:
      ``(mean [E, B, Y], logvar [E, B, Y] | None)`` in normalised target units.
    """
    in_axis = 0 if x_norm.ndim == 3 else None
    return jax.vmap(lambda p, x: member_forward(config, p, x), in_axes=(0, in_axis))(params, x_norm)


def _check_inputs(config: EnsembleConfig, obs: Array, action: Array) -> None:
    chex.assert_shape(obs, (..., config.obs_dim))
    chex.assert_shape(action, (..., config.action_dim))
    if obs.shape[:-1] != action.shape[:-1]:
        raise ValueError(
            f"obs and action must have the same leading shape, got {obs.shape} and {action.shape}"
        )
    chex.assert_type([obs, action], float)


def _inputs(state: EnsembleState, obs: Array, action: Array) -> Array:
    x = jnp.concatenate([obs.astype(jnp.float32), action.astype(jnp.float32)], axis=-1)
    return norm_lib.normalize_inputs(state.normalizer, x)


def _to_real(
    config: EnsembleConfig, state: EnsembleState, mean: Array, logvar: Array | None
) -> tuple[Array, Array]:
    mean_r = norm_lib.denormalize_mean(state.normalizer, mean)
    if logvar is None:
        return mean_r, jnp.zeros_like(mean_r)
    return mean_r, norm_lib.denormalize_var(state.normalizer, jnp.exp(logvar))


@functools.partial(jax.jit, static_argnames="config")
def predict(
    config: EnsembleConfig, state: EnsembleState, obs: Array, action: Array
) -> tuple[Array, Array]:
    """Every member's predicted Gaussian over ``y = concat(obs' - obs, reward)``, real units.

    Args:
      config: the ensemble configuration.
      state: the ensemble.
      obs: ``[..., O] float`` observations.
      action: ``[..., A] float`` actions (same leading shape as ``obs``).

    Returns:
      ``(mean [E, ..., Y] float32, var [E, ..., Y] float32)``: ``mean[..., :O]`` is the
      predicted ``obs' - obs``, ``mean[..., O]`` the reward with ``learn_reward``; ``var`` is
      the predicted (aleatoric) variance, 0 for a deterministic head.
    """
    _check_inputs(config, obs, action)
    lead = obs.shape[:-1]
    x = _inputs(state, obs, action).reshape(-1, config.input_dim)
    mean, logvar = forward_normalized(config, state.params, x)
    mean, var = _to_real(config, state, mean, logvar)
    shape = (config.num_members, *lead, config.output_dim)
    return mean.reshape(shape), var.reshape(shape)


def _grouped_normalized(config, params, elite_idx, x):
    """Row group ``g`` of ``x [G, R, X]`` through member ``elite_idx[g]``: a trace-time loop.

    One dot chain per group (the loop is unrolled when tracing; ``G`` is static), float32.
    Chosen over :func:`_grouped_normalized_batched` (gather the members, one batched dot):
    in isolation the two were equal within noise here (5 elites x 1,400 rows, mbrl-lib's
    model: 6.5 vs 6.7 ms and 13.5 vs 13.0 ms median in two rounds on the shared 2-core
    machine; ``benchmarks/bench_training.py --grouped``), and inside a whole PETS planning
    call the per-member dots measured about 10 % faster: 0.91 s against 1.00 s per call for
    one batched einsum over the 5 elites (mbrl-lib's default PETS-CEM workload with
    TS-infinity, measured on the project's 2-core AMD EPYC Zen 4 CPU with jax 0.10.2).
    """
    means, logvars = [], []
    for g in range(x.shape[0]):
        p = jax.tree.map(lambda leaf, g=g: leaf[elite_idx[g]], params)
        m, lv = member_forward(config, p, x[g])
        means.append(m)
        logvars.append(lv)
    mean = jnp.stack(means)
    logvar = None if config.deterministic else jnp.stack(logvars)
    return mean, logvar


def _grouped_normalized_batched(config, params, elite_idx, x):
    """The alternative of :func:`_grouped_normalized`: gather the members, one batched dot."""
    p = jax.tree.map(lambda leaf: leaf[elite_idx[: x.shape[0]]], params)
    return jax.vmap(lambda pk, xk: member_forward(config, pk, xk))(p, x)


@functools.partial(jax.jit, static_argnames="config")
def predict_grouped(
    config: EnsembleConfig, state: EnsembleState, obs: Array, action: Array
) -> tuple[Array, Array]:
    """Row group ``g`` goes through elite member ``state.elite_idx[g]`` only (planning path).

    This is PETS' particle propagation: the caller arranges its particles into ``G`` groups
    (a fixed assignment for TS-infinity, a fresh permutation per step for TS1).

    Args:
      config: the ensemble configuration.
      state: the ensemble.
      obs: ``[G, R, O] float`` observations, ``G <= len(state.elite_idx)`` groups of ``R``.
      action: ``[G, R, A] float`` actions.

    Returns:
      ``(mean [G, R, Y] float32, var [G, R, Y] float32)`` in real units, as :func:`predict`.
    """
    _check_inputs(config, obs, action)
    chex.assert_rank(obs, 3)
    g = obs.shape[0]
    if g > state.elite_idx.shape[0]:
        raise ValueError(
            f"obs has {g} groups but the ensemble has only {state.elite_idx.shape[0]} elites"
        )
    x = _inputs(state, obs, action)
    # oneDNN: one call per layer for all groups (its per-call cost is the larger one there)
    grouped = (
        _grouped_normalized_batched
        if onednn.resolve(config.dense_library, config.matmul_dtype) == "onednn"
        else _grouped_normalized
    )
    mean, logvar = grouped(config, state.params, state.elite_idx, x)
    return _to_real(config, state, mean, logvar)


def _split_target(config: EnsembleConfig, obs: Array, y: Array) -> tuple[Array, Array | None]:
    """``obs [..., O]`` and ``y [E or G, ..., Y]`` (or ``[G, R, Y]``) to next obs and reward."""
    obs = obs.astype(jnp.float32)
    if obs.ndim < y.ndim:  # obs shared by every member
        obs = obs[None]
    if config.reward_only:  # the observation does not change; the one output is the reward
        return jnp.broadcast_to(obs, (*y.shape[:-1], config.obs_dim)), y[..., 0]
    next_obs = obs + y[..., : config.obs_dim]
    reward = y[..., config.obs_dim] if config.learn_reward else None
    return next_obs, reward


def _draw(config, key, obs, mean, var, deterministic):
    """``mean + sqrt(var) * eps`` (the means with ``deterministic`` or a deterministic
    head), split into next observation and reward."""
    y = mean
    if not (deterministic or config.deterministic):
        y = mean + jnp.sqrt(var) * jax.random.normal(key, mean.shape, jnp.float32)
    return _split_target(config, obs, y)


@functools.partial(jax.jit, static_argnames=("config", "deterministic"))
def sample(
    config: EnsembleConfig,
    state: EnsembleState,
    key: PRNGKey,
    obs: Array,
    action: Array,
    *,
    deterministic: bool = False,
) -> tuple[Array, Array | None]:
    """Draw every member's next observation (and reward) from its predicted Gaussian.

    Args:
      config: the ensemble configuration.
      state: the ensemble.
      key: PRNG key, consumed (ignored with ``deterministic`` or a deterministic head).
      obs: ``[..., O] float`` observations.
      action: ``[..., A] float`` actions.
      deterministic: return the means instead of samples.

    Returns:
      ``(next_obs [E, ..., O] float32, reward [E, ...] float32 | None)``; the reward is
      ``None`` unless ``learn_reward``.
    """
    mean, var = predict(config, state, obs, action)
    return _draw(config, key, obs, mean, var, deterministic)


@functools.partial(jax.jit, static_argnames=("config", "deterministic"))
def sample_grouped(
    config: EnsembleConfig,
    state: EnsembleState,
    key: PRNGKey,
    obs: Array,
    action: Array,
    *,
    deterministic: bool = False,
) -> tuple[Array, Array | None]:
    """:func:`sample` through :func:`predict_grouped`: group ``g`` uses elite ``g``.

    Args:
      config: the ensemble configuration.
      state: the ensemble.
      key: PRNG key, consumed.
      obs: ``[G, R, O] float`` observations.
      action: ``[G, R, A] float`` actions.
      deterministic: return the means instead of samples.

    Returns:
      ``(next_obs [G, R, O] float32, reward [G, R] float32 | None)``.
    """
    mean, var = predict_grouped(config, state, obs, action)
    return _draw(config, key, obs, mean, var, deterministic)


@functools.partial(jax.jit, static_argnames=("config", "elites_only"))
def disagreement(
    config: EnsembleConfig,
    state: EnsembleState,
    obs: Array,
    action: Array,
    *,
    elites_only: bool = True,
) -> Array:
    """Epistemic uncertainty: the standard deviation of the member means, real units.

    Args:
      config: the ensemble configuration.
      state: the ensemble.
      obs: ``[..., O] float`` observations.
      action: ``[..., A] float`` actions.
      elites_only: spread over the elite members only (the ones planning uses).

    Returns:
      ``[..., Y] float32`` the per-target standard deviation across members.
    """
    mean, _ = predict(config, state, obs, action)
    if elites_only:
        mean = mean[state.elite_idx]
    return jnp.std(mean, axis=0)


__all__ = [
    "ACTIVATIONS",
    "EnsembleConfig",
    "EnsembleState",
    "MemberMLP",
    "disagreement",
    "forward_normalized",
    "init",
    "logvar_bounds",
    "member_forward",
    "predict",
    "predict_grouped",
    "resolve_matmul_dtype",
    "sample",
    "sample_grouped",
]
