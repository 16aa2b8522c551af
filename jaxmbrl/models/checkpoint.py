"""Saving and loading a trained ensemble with orbax-checkpoint.

A checkpoint directory holds numbered steps (``<dir>/0``, ``<dir>/1``, ...); each step holds
the :class:`~jaxmbrl.models.ensemble.EnsembleState` (parameters, normaliser, elites) and the
:class:`~jaxmbrl.models.ensemble.EnsembleConfig` as JSON. The round trip is bit-exact (arrays
are stored in their own dtype).

Crash safety: orbax writes a step into a temporary directory and renames it into place only
once it is complete; incomplete temporaries are never listed as steps. :func:`save` always
writes a *new* step and removes older ones (beyond ``keep``) only after the new one is
finalised, so an interrupted write leaves the previous checkpoint loadable.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxmbrl.models import ensemble as ens

_FORMAT = "jaxmbrl.models.ensemble/1"


def _manager(directory: str | os.PathLike, keep: int | None) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=False
    )
    return ocp.CheckpointManager(os.path.abspath(os.fspath(directory)), options=options)


def save(
    directory: str | os.PathLike,
    config: ens.EnsembleConfig,
    state: ens.EnsembleState,
    *,
    step: int | None = None,
    keep: int | None = 2,
) -> int:
    """Write ``state`` and ``config`` as a new step of the checkpoint ``directory``.

    Args:
      directory: the checkpoint directory (created if missing).
      config: the ensemble configuration ``state`` belongs to.
      state: the ensemble to save.
      step: the step number; default: one more than the latest step (0 for a new directory).
        An existing step is never overwritten.
      keep: how many of the newest steps to keep (``None``: all); older steps are deleted
        only after the new step is complete.

    Returns:
      The step written.

    Raises:
      ValueError: if ``step`` already exists, or ``state`` does not match ``config``.
    """
    _check_structure(config, state)
    with _manager(directory, keep) as mngr:
        latest = mngr.latest_step()
        if step is None:
            step = 0 if latest is None else latest + 1
        if step in mngr.all_steps():
            raise ValueError(f"step {step} already exists in {directory}; pick a new step")
        meta = {"format": _FORMAT, "config": config.to_dict()}
        mngr.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
            ),
        )
        mngr.wait_until_finished()
    return step


def latest_step(directory: str | os.PathLike) -> int | None:
    """The newest complete step in ``directory``, or ``None``."""
    with _manager(directory, None) as mngr:
        return mngr.latest_step()


def load(
    directory: str | os.PathLike,
    config: ens.EnsembleConfig | None = None,
    *,
    step: int | None = None,
) -> tuple[ens.EnsembleConfig, ens.EnsembleState]:
    """Load a saved ensemble.

    Args:
      directory: the checkpoint directory.
      config: the configuration the caller expects; if given and different from the saved
        one, nothing is loaded and a ``ValueError`` names the differing fields. ``None``
        accepts the saved configuration.
      step: the step to load (default: the latest complete one).

    Returns:
      ``(config, state)`` as saved, bit-exact.

    Raises:
      FileNotFoundError: no complete checkpoint in ``directory``.
      ValueError: the saved configuration differs from ``config``.
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no checkpoint directory {directory}")
    with _manager(directory, None) as mngr:
        if step is None:
            step = mngr.latest_step()
            if step is None:
                raise FileNotFoundError(f"no complete checkpoint in {directory}")
        meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{directory} step {step} is not a jaxmbrl ensemble checkpoint")
        saved = ens.EnsembleConfig.from_dict(meta["config"])
        if config is not None and config != saved:
            diff = [
                f"{f.name}: saved {getattr(saved, f.name)!r}, given {getattr(config, f.name)!r}"
                for f in dataclasses.fields(ens.EnsembleConfig)
                if getattr(saved, f.name) != getattr(config, f.name)
            ]
            raise ValueError(
                f"checkpoint {directory} (step {step}) was saved with a different "
                f"EnsembleConfig; mismatched fields: " + "; ".join(diff)
            )
        abstract = jax.eval_shape(lambda: ens.init(saved, jax.random.key(0)))
        restored = mngr.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
        )["state"]
    return saved, restored


def _check_structure(config: ens.EnsembleConfig, state: ens.EnsembleState) -> None:
    """Raise ``ValueError`` unless ``state`` has the shapes and dtypes ``config`` implies."""
    expected = jax.eval_shape(lambda: ens.init(config, jax.random.key(0)))
    exp_leaves, exp_def = jax.tree.flatten_with_path(expected)
    got_leaves, got_def = jax.tree.flatten_with_path(state)
    if exp_def != got_def:
        raise ValueError("state does not have the structure that config implies")
    for (path, e), (_, g) in zip(exp_leaves, got_leaves, strict=True):
        dtype = np.asarray(g).dtype
        if tuple(np.shape(g)) != e.shape or dtype != e.dtype:
            raise ValueError(
                f"state leaf {jax.tree_util.keystr(path)} is {dtype}"
                f"{list(np.shape(g))}, config implies {e.dtype}{list(e.shape)}"
            )


__all__ = ["latest_step", "load", "save"]
