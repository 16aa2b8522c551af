"""Training an ensemble with optax: one compiled call, no Python loop over members or batches.

:func:`train` fits the normaliser, splits the valid rows into training and validation sets,
draws one bootstrap resample of the training rows per member, and runs minibatch epochs of
Adam (with coupled L2 weight decay, as ``torch.optim.Adam(weight_decay=...)`` in mbrl-lib) on
the Gaussian NLL (plus the PETS log-variance bound penalty) or on the MSE of a deterministic
head. All ``E`` members train at once: their parameters are stacked, the loss is the sum of
the members' losses, so each member receives exactly its own gradient.

Early stopping runs inside the compiled call as a ``lax.while_loop`` over epochs (at most
``max_epochs``) whose carry holds, per member, the best parameters seen and their validation
error, and the number of epochs since the last improvement. A ``while_loop`` rather than a
fixed-length ``scan`` with a skip flag because it stops computing when patience runs out
(``lax.cond`` inside a ``scan`` turns into a ``select`` that runs both branches when the
training call is vmapped, e.g. over seeds); the per-epoch logs are preallocated ``[U]``
arrays filled in place, NaN after the last epoch run. Inside an epoch the minibatches run in a
``lax.fori_loop`` whose trip count follows the number of valid rows, so a fixed-capacity
replay buffer with a ``mask`` trains without recompiling as it fills.

Differences from mbrl-lib's ``ModelTrainer``, on purpose:

* the best parameters are kept **per member** (members are independent models); mbrl-lib
  snapshots the whole ensemble whenever any member improves. Patience counts epochs since any
  member improved by more than ``improvement_threshold`` (relative), as in mbrl-lib.
* targets are normalised too (mbrl-lib normalises only inputs), so one learning rate and one
  pair of log-variance bounds suit every target dimension.
* the Adam state starts fresh at every call (mbrl-lib keeps its optimizer across calls).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import NamedTuple

import chex
import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxmbrl.models import ensemble as ens
from jaxmbrl.models import normalizer as norm_lib
from jaxmbrl.types import Array, PRNGKey, PyTree
from jaxmbrl.validation import check_positive_int, check_range


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one training call (hashable; static under ``jit``).

    Attributes:
      learning_rate: Adam step size (mbrl-lib PETS: 7.5e-4).
      weight_decay: coupled L2 weight decay on the network weights and biases (3e-5).
      batch_size: ``M``, rows per member per minibatch (256).
      max_epochs: the most epochs of one call (an epoch is one pass over each member's
        bootstrap resample).
      max_steps: the most minibatch steps of one call, or ``None`` for no such limit. Checked
        after each epoch, so a call runs at most ``max_steps + ceil(n_train / M) - 1`` steps:
        with it, a call's cost stops growing with the data (an epoch grows with it). Meant
        for continuing a trained ensemble (a fixed budget of steps per call), see
        :class:`jaxmbrl.agents.pets.PETSConfig`.
      patience: stop after this many epochs in which no member improved its validation
        error by more than ``improvement_threshold`` (relative). ``>= max_epochs`` disables it.
      validation_ratio: share of the valid rows held out for validation, in ``[0, 1)``. With
        0 the validation error is measured on the training rows (as mbrl-lib does).
      bootstrap: each member trains on its own resample (with replacement) of the training
        rows; otherwise all members see the same rows (in the same order).
      improvement_threshold: relative improvement that resets the patience counter (0.01).
      logvar_penalty: weight of ``sum(max_logvar) - sum(min_logvar)`` in the Gaussian loss.
      adam_eps: Adam's epsilon (1e-8).
      refit_normalizer: re-fit the input/target statistics on this call's training rows; with
        ``False`` a given state's statistics are kept (a fresh model always fits them).
      restart_above: when continuing a given state, restart each member whose validation
        error on this call's data, before any step, is above this (normalised MSE; about 1
        for a model no better than the mean) from fresh parameters; ``None`` never restarts.
        A member that no longer fits the data (inputs that never varied before, a region it
        never saw) recovers slower than a fresh one learns: measured on Reacher-misc (a goal
        drawn per episode, constant within one; 2 x 64 members, AMD EPYC), members trained on
        one episode and continued on three had an error of 0.86-1.21 before the call and
        0.56-0.70 after 2,000 steps, where fresh members reached 0.004-0.05.
    """

    learning_rate: float = 7.5e-4
    weight_decay: float = 3e-5
    batch_size: int = 256
    max_epochs: int = 25
    max_steps: int | None = None
    patience: int = 25
    validation_ratio: float = 0.2
    bootstrap: bool = True
    improvement_threshold: float = 0.01
    logvar_penalty: float = 0.01
    adam_eps: float = 1e-8
    refit_normalizer: bool = True
    restart_above: float | None = None

    def __post_init__(self):
        check_range("learning_rate", self.learning_rate, 0.0, math.inf, low_open=True)
        check_range("weight_decay", self.weight_decay, 0.0, math.inf)
        check_positive_int("batch_size", self.batch_size)
        check_positive_int("max_epochs", self.max_epochs)
        if self.max_steps is not None:
            check_positive_int("max_steps", self.max_steps)
        check_positive_int("patience", self.patience)
        check_range("validation_ratio", self.validation_ratio, 0.0, 0.999)
        check_range("improvement_threshold", self.improvement_threshold, 0.0, math.inf)
        check_range("logvar_penalty", self.logvar_penalty, 0.0, math.inf)
        check_range("adam_eps", self.adam_eps, 0.0, math.inf, low_open=True)
        if self.restart_above is not None:
            check_range("restart_above", self.restart_above, 0.0, math.inf, low_open=True)
        for name in ("bootstrap", "refit_normalizer"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")


@struct.dataclass
class TrainLog:
    """What one training call did (``U`` = ``max_epochs``; entries after the last epoch run
    are NaN).

    Attributes:
      train_loss: ``[U] float32`` mean training loss of each epoch (NLL + bound penalty, or
        MSE; mean over members and minibatches; normalised units).
      val_loss: ``[U] float32`` validation error after each epoch: the MSE of the mean
        prediction on normalised targets, averaged over members (the early-stopping score).
      val_member_loss: ``[U, E] float32`` the same per member.
      initial_val_error: ``[E] float32`` per-member validation error before training.
      val_error: ``[E] float32`` per-member validation error of the returned parameters
        (re-evaluated after restoring the best ones).
      val_output_error: ``[E, Y] float32`` the same per output (each observation
        dimension's change, then the reward when it is learned): a bad reward head or one
        badly predicted dimension shows here.
      best_epoch: ``[E] int32`` the epoch whose parameters each member returns (``-1``: no
        epoch beat the initial parameters).
      num_epochs: ``[] int32`` epochs run (``< U`` when early stopping triggered).
      num_train: ``[] int32`` training rows; ``num_val``: ``[] int32`` validation rows.
      restarted: ``[E] bool`` members restarted from fresh parameters
        (``TrainConfig.restart_above``; all ``True`` for a fresh ensemble).
      diverged: ``[] bool``: an epoch's training loss or a member's validation error was not
        finite (a diverging model, e.g. a learning rate far too high). Training stops after
        that epoch; the returned parameters are each member's best *finite* ones, but a
        caller should treat the model as failed (PETS stops the run with an error).
    """

    train_loss: Array  # [U]
    val_loss: Array  # [U]
    val_member_loss: Array  # [U, E]
    initial_val_error: Array  # [E]
    val_error: Array  # [E]
    val_output_error: Array  # [E, Y]
    best_epoch: Array  # [E] int32
    num_epochs: Array  # [] int32
    num_train: Array  # [] int32
    num_val: Array  # [] int32
    diverged: Array  # [] bool
    restarted: Array  # [E] bool


def patience_update(
    ref_err: Array, since: Array, err: Array, threshold: float
) -> tuple[Array, Array]:
    """mbrl-lib's early-stopping rule, one epoch.

    Progress is measured against the score at the last *significant* improvement, not the
    previous epoch, so a slow steady decrease (each epoch under the threshold) still resets
    the counter once it adds up to more than ``threshold``.

    Args:
      ref_err: ``[E]`` per-member validation error at the last significant improvement.
      since: ``[] int32`` epochs since then.
      err: ``[E]`` this epoch's validation error.
      threshold: relative improvement that counts (mbrl-lib: 0.01).

    Returns:
      ``(ref_err [E], since [])``: both reset when any member improved by more than
      ``threshold`` relative to ``ref_err``.
    """
    improved = jnp.any((ref_err - err) / jnp.abs(ref_err) > threshold)
    return jnp.where(improved, jnp.minimum(ref_err, err), ref_err), jnp.where(
        improved, 0, since + 1
    )


def make_optimizer(train_config: TrainConfig) -> optax.GradientTransformation:
    """Adam with coupled L2 weight decay on the network (not on learned log-variance bounds).

    ``add_decayed_weights`` before ``adam`` is what ``torch.optim.Adam(weight_decay=wd)``
    does (the decay term joins the gradient), which is mbrl-lib's optimizer.
    """

    def decay_mask(params):
        return {k: jax.tree.map(lambda _, k=k: k == "net", v) for k, v in params.items()}

    return optax.chain(
        optax.add_decayed_weights(train_config.weight_decay, mask=decay_mask),
        optax.adam(train_config.learning_rate, eps=train_config.adam_eps),
    )


def member_losses(
    model_config: ens.EnsembleConfig,
    train_config: TrainConfig,
    params: PyTree,
    x_norm: Array,
    y_norm: Array,
    weight: Array,
) -> Array:
    """Per-member training loss on normalised data.

    Gaussian head: ``mean_rows(mean_y((mu - y)^2 exp(-lv) + lv))`` plus
    ``logvar_penalty * (sum(max_logvar) - sum(min_logvar))`` (mbrl-lib's ``_nll_loss``);
    deterministic head: the mean squared error.

    Args:
      model_config: the ensemble configuration.
      train_config: the training configuration.
      params: stacked parameters (leading axis ``E``).
      x_norm: ``[E, M, X] float32`` normalised inputs, one minibatch per member.
      y_norm: ``[E, M, Y] float32`` normalised targets.
      weight: ``[M] float32`` row weights (0 for padding rows).

    Returns:
      ``[E] float32`` losses.
    """
    mean, logvar = ens.forward_normalized(model_config, params, x_norm)
    sq = jnp.square(mean - y_norm)
    if logvar is None:
        per_row = jnp.mean(sq, axis=-1)
    else:
        per_row = jnp.mean(sq * jnp.exp(-logvar) + logvar, axis=-1)
    n = jnp.maximum(jnp.sum(weight), 1.0)
    loss = jnp.sum(per_row * weight[None], axis=-1) / n
    if not model_config.deterministic:
        lo, hi = ens.logvar_bounds(model_config, params)
        penalty = jnp.sum(hi, axis=-1) - jnp.sum(lo, axis=-1)
        loss = loss + train_config.logvar_penalty * jnp.broadcast_to(penalty, loss.shape)
    return loss


def validation_error(
    model_config: ens.EnsembleConfig, params: PyTree, x_norm: Array, y_norm: Array, weight: Array
) -> Array:
    """Per-member MSE of the mean prediction on normalised targets (mbrl-lib's eval score).

    Args:
      model_config: the ensemble configuration.
      params: stacked parameters (leading axis ``E``).
      x_norm: ``[V, X] float32`` normalised inputs (shared by all members).
      y_norm: ``[V, Y] float32`` normalised targets.
      weight: ``[V] float32`` row weights.

    Returns:
      ``[E] float32``.
    """
    mean, _ = ens.forward_normalized(model_config, params, x_norm)
    per_row = jnp.mean(jnp.square(mean - y_norm[None]), axis=-1)  # [E, V]
    return jnp.sum(per_row * weight[None], axis=-1) / jnp.maximum(jnp.sum(weight), 1.0)


def validation_error_per_output(
    model_config: ens.EnsembleConfig, params: PyTree, x_norm: Array, y_norm: Array, weight: Array
) -> Array:
    """Per-member, per-output MSE of the mean prediction on normalised targets: which output
    (an observation dimension, or the reward) a model gets wrong.

    Args: as :func:`validation_error`.

    Returns:
      ``[E, Y] float32`` (``Y`` = the observation size, plus 1 for a learned reward, last);
      its mean over ``Y`` is :func:`validation_error` (up to float rounding).
    """
    mean, _ = ens.forward_normalized(model_config, params, x_norm)
    sq = jnp.square(mean - y_norm[None])  # [E, V, Y]
    return jnp.einsum("evy,v->ey", sq, weight) / jnp.maximum(jnp.sum(weight), 1.0)


@functools.partial(jax.jit, static_argnames="model_config")
def evaluate(
    model_config: ens.EnsembleConfig,
    state: ens.EnsembleState,
    obs: Array,
    action: Array,
    next_obs: Array,
    reward: Array | None = None,
    mask: Array | None = None,
) -> Array:
    """Per-member one-step error on data: MSE of the mean prediction, normalised targets.

    The targets are normalised with the state's own statistics, so the number is comparable
    to :attr:`TrainLog.val_error` (and is about 1.0 for a model that predicts the mean).

    Args:
      model_config: the ensemble configuration.
      state: the ensemble.
      obs: ``[L, O]``; action: ``[L, A]``; next_obs: ``[L, O]``; reward: ``[L]`` or ``None``
        (required with ``learn_reward``); mask: ``[L] bool`` or ``None``.

    Returns:
      ``[E] float32`` per-member errors.
    """
    x, y, w = _prepare(model_config, obs, action, next_obs, reward, mask)
    xn = norm_lib.normalize_inputs(state.normalizer, x)
    yn = norm_lib.normalize_targets(state.normalizer, y)
    return validation_error(model_config, state.params, xn, yn, w.astype(jnp.float32))


def _prepare(model_config, obs, action, next_obs, reward, mask):
    """Check shapes and build ``x [L, X]``, ``y [L, Y]``, ``valid [L] bool`` (zeros elsewhere)."""
    o, a = model_config.obs_dim, model_config.action_dim
    chex.assert_rank([obs, action, next_obs], 2)
    t = obs.shape[0]
    chex.assert_shape(obs, (t, o))
    chex.assert_shape(action, (t, a))
    chex.assert_shape(next_obs, (t, o))
    chex.assert_type([obs, action, next_obs], float)
    if model_config.learn_reward:
        if reward is None:
            raise ValueError("reward is required when the model config has learn_reward=True")
        chex.assert_shape(reward, (t,))
    valid = jnp.ones((t,), bool) if mask is None else mask
    chex.assert_shape(valid, (t,))
    chex.assert_type(valid, bool)
    obs = obs.astype(jnp.float32)
    x = jnp.concatenate([obs, action.astype(jnp.float32)], axis=-1)
    y = next_obs.astype(jnp.float32) - obs
    if model_config.reward_only:
        y = reward.astype(jnp.float32)[:, None]
    elif model_config.learn_reward:
        y = jnp.concatenate([y, reward.astype(jnp.float32)[:, None]], axis=-1)
    # Padding rows may hold anything (NaN included): zero them so no NaN reaches a gradient.
    x = jnp.where(valid[:, None], x, 0.0)
    y = jnp.where(valid[:, None], y, 0.0)
    return x, y, valid


class _Split(NamedTuple):
    """The training / validation split of one :func:`train` call."""

    order: Array  # [L] int32: valid rows first, in a random order; the first n_val validate
    n_val: Array  # [] int32 validation rows
    n_train: Array  # [] int32 training rows
    train_idx: Array  # [L] int32: the training rows (the first n_train entries are real)
    train_rows: Array  # [L] bool: which rows train


class _EpochData(NamedTuple):
    """What every epoch of one :func:`train` call reads (traced arrays, never updated)."""

    xn: Array  # [L, X] float32 normalised inputs
    yn: Array  # [L, Y] float32 normalised targets
    boot: Array  # [E, L] int32: member e's i-th training row is boot[e, i] (i < n_train)
    n_train: Array  # [] int32 training rows
    num_batches: Array  # [] int32 minibatches per epoch, ceil(n_train / M)
    xv: Array  # [V, X] float32 normalised validation inputs (V = L without a held-out set)
    yv: Array  # [V, Y] float32 normalised validation targets
    val_w: Array  # [V] float32 validation row weights (0 for padding rows)


class _BatchCarry(NamedTuple):
    """The ``lax.fori_loop`` carry over the minibatches of one epoch."""

    params: PyTree  # stacked parameters, leaves [E, ...] float32
    opt_state: PyTree  # the optax Adam state of params
    perm: Array  # [ceil(L / M) * M] int32 this epoch's order of the training rows
    loss_sum: Array  # [] float32 sum of the minibatches' mean member losses


class _EpochCarry(NamedTuple):
    """The early-stopping ``lax.while_loop`` carry over epochs."""

    epoch: Array  # [] int32 epochs run
    since: Array  # [] int32 epochs since the last significant improvement
    ref_err: Array  # [E] float32 validation error at the last significant improvement
    params: PyTree  # stacked parameters, leaves [E, ...] float32
    opt_state: PyTree  # the optax Adam state of params
    best_params: PyTree  # leaves [E, ...] float32: each member's best parameters so far
    best_err: Array  # [E] float32 validation error of best_params
    best_epoch: Array  # [E] int32 the epoch of best_params (-1: the initial parameters)
    train_loss: Array  # [U] float32 per-epoch training loss (NaN after the last epoch run)
    val_member: Array  # [U, E] float32 per-epoch validation error (NaN after the last)
    diverged: Array  # [] bool: an epoch's training loss or validation error was not finite


def _split_rows(train_config: TrainConfig, valid: Array, u_split: Array) -> _Split:
    """Split the valid rows of ``valid [L] bool`` with ``u_split [L] float32`` uniforms."""
    t = valid.shape[0]
    pos = jnp.arange(t)
    order = jnp.argsort(jnp.where(valid, u_split, 2.0))
    n_valid = jnp.sum(valid).astype(jnp.int32)
    if train_config.validation_ratio > 0:
        n_val = jnp.floor(n_valid * train_config.validation_ratio).astype(jnp.int32)
        n_val = jnp.clip(n_val, jnp.minimum(1, n_valid - 1), jnp.maximum(n_valid - 1, 0))
    else:
        n_val = jnp.int32(0)
    n_train = n_valid - n_val
    train_idx = jnp.take(order, n_val + pos, mode="clip")
    train_rows = jnp.zeros((t,), bool).at[order].set((pos >= n_val) & (pos < n_valid))
    return _Split(order, n_val, n_train, train_idx, train_rows)


def _epoch_data(
    train_config: TrainConfig, split: _Split, u_boot: Array, xn: Array, yn: Array
) -> _EpochData:
    """Validation rows and bootstrap resamples (``u_boot [E, L]`` uniforms) of the split."""
    tc = train_config
    t = xn.shape[0]
    pos = jnp.arange(t)
    if tc.validation_ratio > 0:
        v = min(t, math.ceil(t * tc.validation_ratio) + 1)  # static bound on n_val
        val_idx = split.order[:v]
        val_w = (jnp.arange(v) < split.n_val).astype(jnp.float32)
    else:
        val_idx = split.train_idx
        val_w = (pos < split.n_train).astype(jnp.float32)
    xv, yv = xn[val_idx], yn[val_idx]
    n_train = split.n_train
    if tc.bootstrap:
        draw = jnp.minimum((u_boot * n_train).astype(jnp.int32), jnp.maximum(n_train - 1, 0))
        boot = split.train_idx[draw]
    else:
        boot = jnp.broadcast_to(split.train_idx, (u_boot.shape[0], t))
    num_batches = (n_train + tc.batch_size - 1) // tc.batch_size
    return _EpochData(xn, yn, boot, n_train, num_batches, xv, yv, val_w)


def _validate(model_config: ens.EnsembleConfig, data: _EpochData, params: PyTree) -> Array:
    """``[E] float32`` validation error of ``params`` on the held-out rows."""
    return validation_error(model_config, params, data.xv, data.yv, data.val_w)


def _summed_loss(model_config, train_config, params, xb, yb, wb) -> tuple[Array, Array]:
    """``(sum of the member losses [], member losses [E])``: each member gets its gradient."""
    losses = member_losses(model_config, train_config, params, xb, yb, wb)
    return jnp.sum(losses), losses


def _batch_step(
    model_config: ens.EnsembleConfig,
    train_config: TrainConfig,
    optimizer: optax.GradientTransformation,
    data: _EpochData,
    b: Array,
    carry: _BatchCarry,
) -> _BatchCarry:
    """One Adam step of every member on minibatch ``b`` of the epoch's order."""
    m = train_config.batch_size
    slot = b * m + jnp.arange(m)
    p = jax.lax.dynamic_slice(carry.perm, (b * m,), (m,))
    rows = data.boot[:, p]  # [E, M]
    wb = (slot < data.n_train).astype(jnp.float32)
    loss_fn = functools.partial(_summed_loss, model_config, train_config)
    grads, losses = jax.grad(loss_fn, has_aux=True)(carry.params, data.xn[rows], data.yn[rows], wb)
    updates, opt_state = optimizer.update(grads, carry.opt_state, carry.params)
    params = optax.apply_updates(carry.params, updates)
    return _BatchCarry(params, opt_state, carry.perm, carry.loss_sum + jnp.mean(losses))


def _select_members(mask: Array, new: PyTree, old: PyTree) -> PyTree:
    """Per member: ``new`` where ``mask [E] bool`` is set, else ``old`` (leaves ``[E, ...]``)."""
    pick = lambda n, o: jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o)
    return jax.tree.map(pick, new, old)


def _epoch(
    model_config: ens.EnsembleConfig,
    train_config: TrainConfig,
    optimizer: optax.GradientTransformation,
    data: _EpochData,
    k_epochs: PRNGKey,
    c: _EpochCarry,
) -> _EpochCarry:
    """One epoch: the minibatches in a fresh random order, then validation and bookkeeping."""
    tc = train_config
    t = data.xn.shape[0]
    pos = jnp.arange(t)
    padded = -(-t // tc.batch_size) * tc.batch_size
    k_perm = jax.random.fold_in(k_epochs, c.epoch)
    u = jnp.where(pos < data.n_train, jax.random.uniform(k_perm, (t,)), 2.0)
    perm = jnp.zeros((padded,), jnp.int32).at[:t].set(jnp.argsort(u).astype(jnp.int32))
    batch_step = functools.partial(_batch_step, model_config, tc, optimizer, data)
    inner = jax.lax.fori_loop(
        0, data.num_batches, batch_step, _BatchCarry(c.params, c.opt_state, perm, jnp.float32(0.0))
    )
    err = _validate(model_config, data, inner.params)  # [E]
    better = err < c.best_err
    ref, since = patience_update(c.ref_err, c.since, err, tc.improvement_threshold)
    i = c.epoch
    mean_loss = inner.loss_sum / jnp.maximum(data.num_batches, 1)
    diverged = ~jnp.isfinite(mean_loss) | ~jnp.all(jnp.isfinite(err))
    return _EpochCarry(
        epoch=i + 1,
        since=since,
        ref_err=ref,
        params=inner.params,
        opt_state=inner.opt_state,
        best_params=_select_members(better, inner.params, c.best_params),
        best_err=jnp.where(better, err, c.best_err),
        best_epoch=jnp.where(better, i, c.best_epoch),
        train_loss=c.train_loss.at[i].set(mean_loss),
        val_member=c.val_member.at[i].set(err),
        diverged=c.diverged | diverged,
    )


def _first_epoch_carry(
    train_config: TrainConfig, e: int, params: PyTree, opt_state: PyTree, init_err: Array
) -> _EpochCarry:
    """The carry before the first epoch: nothing run, the given parameters are the best."""
    nan = jnp.float32(jnp.nan)
    return _EpochCarry(
        epoch=jnp.int32(0),
        since=jnp.int32(0),
        ref_err=init_err,
        params=params,
        opt_state=opt_state,
        best_params=params,
        best_err=init_err,
        best_epoch=jnp.full((e,), -1, jnp.int32),
        train_loss=jnp.full((train_config.max_epochs,), nan),
        val_member=jnp.full((train_config.max_epochs, e), nan),
        diverged=jnp.zeros((), bool),
    )


def _keep_training(train_config: TrainConfig, num_batches: Array, c: _EpochCarry) -> Array:
    """``[] bool``: epochs, steps (``num_batches [] int32`` per epoch) and patience left, and
    nothing has diverged."""
    tc = train_config
    keep = (c.epoch < tc.max_epochs) & (c.since < tc.patience) & ~c.diverged
    if tc.max_steps is not None:
        keep &= c.epoch * num_batches < tc.max_steps
    return keep


@functools.partial(jax.jit, static_argnames=("model_config", "train_config"))
def train(
    model_config: ens.EnsembleConfig,
    train_config: TrainConfig,
    key: PRNGKey,
    state: ens.EnsembleState | None,
    obs: Array,
    action: Array,
    next_obs: Array,
    reward: Array | None = None,
    mask: Array | None = None,
) -> tuple[ens.EnsembleState, TrainLog]:
    """Train an ensemble on transitions; one compiled call (jitted; configs are static).

    Args:
      model_config: the ensemble configuration.
      train_config: the training configuration.
      key: PRNG key, consumed (initialisation, split, bootstraps, minibatch order).
      state: the ensemble to continue training, or ``None`` for a fresh one.
      obs: ``[L, O] float`` observations.
      action: ``[L, A] float`` actions.
      next_obs: ``[L, O] float`` next observations.
      reward: ``[L] float`` rewards, required with ``learn_reward`` (else ignored).
      mask: ``[L] bool`` valid rows, or ``None`` for all; rows with ``False`` are ignored
        everywhere (statistics, split, batches) and may contain anything.

    Returns:
      ``(state, log)``: the trained :class:`~jaxmbrl.models.ensemble.EnsembleState` (each
      member's best parameters by validation error; ``elite_idx`` = the ``G`` members with
      the lowest validation error, best first; fitted normaliser) and a :class:`TrainLog`.
    """
    mc, tc = model_config, train_config
    x, y, valid = _prepare(mc, obs, action, next_obs, reward, mask)
    t = x.shape[0]
    e = mc.num_members
    # Few random calls on purpose: each costs about a second of XLA:CPU compile time.
    k_init, k_data, k_epochs = jax.random.split(key, 3)
    u_data = jax.random.uniform(k_data, (1 + e, t))  # [0]: the split; [1:]: bootstraps
    fresh = state is None
    if fresh:
        state = ens.init(mc, k_init)
        refit = True
    else:
        refit = tc.refit_normalizer
    split = _split_rows(tc, valid, u_data[0])
    normalizer = norm_lib.fit(x, y, split.train_rows) if refit else state.normalizer
    xn = norm_lib.normalize_inputs(normalizer, x)
    yn = norm_lib.normalize_targets(normalizer, y)
    data = _epoch_data(tc, split, u_data[1:], xn, yn)
    optimizer = make_optimizer(tc)

    params = state.params
    init_err = _validate(mc, data, params)
    restarted = jnp.full((e,), fresh)
    if not fresh and tc.restart_above is not None:
        new = ens.init(mc, k_init).params
        restarted = ~(init_err <= tc.restart_above)  # a NaN error restarts too
        params = _select_members(restarted, new, params)
        init_err = jnp.where(restarted, _validate(mc, data, new), init_err)
    carry = _first_epoch_carry(tc, e, params, optimizer.init(params), init_err)
    carry = jax.lax.while_loop(
        functools.partial(_keep_training, tc, data.num_batches),
        functools.partial(_epoch, mc, tc, optimizer, data, k_epochs),
        carry,
    )

    params = carry.best_params
    val_error = _validate(mc, data, params)
    elite_idx = jnp.argsort(val_error)[: mc.num_elites].astype(jnp.int32)
    new_state = ens.EnsembleState(params=params, normalizer=normalizer, elite_idx=elite_idx)
    log = TrainLog(
        train_loss=carry.train_loss,
        val_loss=jnp.mean(carry.val_member, axis=-1),
        val_member_loss=carry.val_member,
        initial_val_error=init_err,
        val_error=val_error,
        val_output_error=validation_error_per_output(mc, params, data.xv, data.yv, data.val_w),
        best_epoch=carry.best_epoch,
        num_epochs=carry.epoch,
        num_train=split.n_train,
        num_val=split.n_val,
        diverged=carry.diverged | ~jnp.all(jnp.isfinite(val_error)),
        restarted=restarted,
    )
    return new_state, log


__all__ = [
    "TrainConfig",
    "TrainLog",
    "evaluate",
    "make_optimizer",
    "member_losses",
    "train",
    "validation_error",
    "validation_error_per_output",
]
