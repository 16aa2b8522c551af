"""Many devices through :mod:`jax.sharding`: meshes, sharded seeds, sharded candidates.

jaxmbrl has no distribution layer of its own. Its functions are pure and batched by
``vmap`` (seeds, start states) or by an explicit leading axis (the ``N`` candidates an
objective scores), so spreading work over devices is a matter of *placing* arrays: put a
pytree's leading axis on a :class:`jax.sharding.Mesh` and ``jit`` partitions the same
program over the devices (GSPMD). These helpers are thin, documented wrappers for the two
axes worth sharding:

* **seeds** (or any independent batch: start states, planners): :func:`seed_mesh` and
  :func:`shard_leading_axis` place a seed-vmapped :class:`~jaxmbrl.agents.pets.PETSState`
  (or any pytree with a leading batch axis) over the devices; ``jax.jit(jax.vmap(f))`` then
  runs each device's seeds on that device, and the outputs stay sharded;
* **candidates**: :func:`shard_candidates` wraps an objective so that its ``[N, H, A]``
  input and ``[N]`` output are constrained to be split over ``N`` inside ``jit``.

The code is the same for one CPU, several GPUs or several hosts: only the mesh changes
(after ``jax.distributed.initialize()`` on every host, ``jax.devices()`` lists the devices
of all hosts). Sharding changes where the work runs, not what is computed: the results
equal those on one device up to floating-point reassociation (the tests check ``rtol``
``1e-5``).

Shape legend: see :mod:`jaxmbrl.types`.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxmbrl.types import Array, Objective, PRNGKey, PyTree

SEED_AXIS = "seeds"
"""The mesh axis name :func:`seed_mesh` uses."""

CANDIDATE_AXIS = "candidates"
"""The mesh axis name :func:`shard_candidates` uses by default."""


def device_mesh(axis_name: str, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh over ``devices``.

    Args:
      axis_name: the name of the mesh's single axis.
      devices: the devices, in order; ``None`` uses ``jax.devices()`` (every device of every
        process, after ``jax.distributed.initialize()`` on several hosts).

    Returns:
      A :class:`jax.sharding.Mesh` of shape ``(len(devices),)`` with ``Auto`` axis types,
      so ``jit`` chooses how to partition whatever is not constrained.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must name at least one device")
    return Mesh(np.array(devices, dtype=object), (axis_name,))


def seed_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A one-axis mesh named ``"seeds"`` over ``devices`` (default: ``jax.devices()``)."""
    return device_mesh(SEED_AXIS, devices)


def _axis_size(mesh: Mesh, axis_name: str) -> int:
    if axis_name not in mesh.shape:
        raise ValueError(f"mesh has no axis {axis_name!r}; its axes are {tuple(mesh.shape)}")
    return int(mesh.shape[axis_name])


def shard_leading_axis(tree: PyTree, mesh: Mesh, axis_name: str = SEED_AXIS) -> PyTree:
    """Place every leaf of ``tree`` on ``mesh``, split along its leading axis.

    Each leaf gets ``NamedSharding(mesh, PartitionSpec(axis_name))``: device ``i`` of the
    mesh axis holds rows ``[i * B / num_devices, (i + 1) * B / num_devices)`` of the leading
    axis ``B`` (``num_devices`` devices on that axis; other mesh axes, if any, hold
    replicas). Typed PRNG key arrays
    are placed like any other leaf.

    Args:
      tree: a pytree of arrays that all have the same leading size ``B`` (for example the
        seed-vmapped ``PETSState`` of ``jax.vmap(pets.init)``).
      mesh: the mesh (for example :func:`seed_mesh`).
      axis_name: the mesh axis to split over.

    Returns:
      The same pytree, with committed, sharded ``jax.Array`` leaves.

    Raises:
      ValueError: ``mesh`` has no ``axis_name``, a leaf is a scalar, or ``B`` is not a
        multiple of the axis size ``num_devices`` (pad the batch to a multiple of it -- e.g.
        run extra seeds -- or use fewer devices).
    """
    d = _axis_size(mesh, axis_name)
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        shape = np.shape(leaf)
        where = jax.tree_util.keystr(path) or "the leaf"
        if not shape:
            raise ValueError(f"cannot shard {where}: it is a scalar, with no leading axis")
        if shape[0] % d:
            raise ValueError(
                f"cannot shard {where} of shape {shape} over mesh axis {axis_name!r} of "
                f"{d} devices: the leading size {shape[0]} is not a multiple of {d}"
            )
    sharding = NamedSharding(mesh, PartitionSpec(axis_name))
    leaves, treedef = jax.tree.flatten(tree)
    placed = jax.device_put(leaves, [sharding] * len(leaves))
    return jax.tree.unflatten(treedef, placed)


def shard_candidates(
    objective: Objective, mesh: Mesh, axis_name: str = CANDIDATE_AXIS
) -> Objective:
    """Wrap ``objective`` so its candidates are split over the devices of ``mesh``.

    The returned objective constrains its input ``actions [N, H, A]`` and its output
    ``[N]`` to ``NamedSharding(mesh, PartitionSpec(axis_name))`` with
    :func:`jax.lax.with_sharding_constraint`; called inside ``jit`` (as every planner is),
    XLA's partitioner propagates that split through the objective, so each device rolls
    out about ``N / num_devices`` candidates; the planner's elite selection then gathers the ``[N]``
    returns.

    Why a sharding constraint and not ``jax.shard_map``: the constraint leaves the program
    as written -- the objective still calls ``jax.random.split(key, N)`` once for all ``N``
    candidates, so candidate ``n`` gets the same key (and the same score, up to
    floating-point reassociation) on any number of devices, and the :data:`Objective`
    contract is unchanged. A ``shard_map`` applying the objective to each shard of
    ``N / num_devices`` candidates would split the key per shard, so the scores -- and the plan --
    would change with the number of devices, unless the objective took per-candidate keys.
    The price is that the partitioning is XLA's choice, not spelled out.

    ``N`` need not be a multiple of the number of devices (XLA pads the last shard), but a
    multiple balances the work. Outside ``jit`` the constraints act as ``device_put``. The
    wrapped objective composes with ``jax.vmap`` over other axes (for example planners of
    several start states), which are then left replicated over this mesh axis unless the
    caller shards them too (``vmap``'s ``spmd_axis_name`` on a 2-D mesh).

    Args:
      objective: ``(key, actions [N, H, A]) -> returns [N] float32``.
      mesh: a mesh with an axis ``axis_name`` (for example
        ``device_mesh("candidates")``).
      axis_name: the mesh axis to split the candidates over.

    Returns:
      ``objective(key, actions [N, H, A]) -> [N] float32``, the same scores.
    """
    _axis_size(mesh, axis_name)
    sharding = NamedSharding(mesh, PartitionSpec(axis_name))

    def sharded_objective(key: PRNGKey, actions: Array) -> Array:
        actions = jax.lax.with_sharding_constraint(actions, sharding)
        returns = objective(key, actions)
        return jax.lax.with_sharding_constraint(returns, sharding)

    return sharded_objective


def num_shards(x: Array) -> int:
    """How many devices hold ``x`` (``len(x.sharding.device_set)``); 1 for host values."""
    sharding = getattr(x, "sharding", None)
    return 1 if sharding is None else len(sharding.device_set)


__all__ = [
    "CANDIDATE_AXIS",
    "SEED_AXIS",
    "device_mesh",
    "num_shards",
    "seed_mesh",
    "shard_candidates",
    "shard_leading_axis",
]
