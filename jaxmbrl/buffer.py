"""A fixed-capacity replay buffer as a pytree with pure functions (jittable, vmappable).

PETS trains its model on *all* real data collected so far and must do so without recompiling
as the data grows, so the buffer keeps static shapes: every leaf is ``[L, ...]`` and a
validity mask (:func:`valid_mask`) tells training which rows hold data. When more than ``L``
items have been added, the oldest are overwritten (first in, first out).

Why not flashbax: it installs with our jax, but its buffers are built around sampling
minibatches of trajectories; PETS needs the whole contents plus a mask, which is the buffer's
internal layout in flashbax rather than its API. Forty lines of our own keep the contract
explicit.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxmbrl.types import Array, PRNGKey, PyTree
from jaxmbrl.validation import check_positive_int


@struct.dataclass
class ReplayBuffer:
    """Buffer state.

    Attributes:
      data: a pytree whose leaves are ``[L, ...]``; row ``i`` is one stored item.
      position: ``[] int32`` the row the next item is written to.
      size: ``[] int32`` the number of valid rows (``<= L``).
      total_added: ``[] int32`` items ever added (for bookkeeping; not reset on wrap).
    """

    data: PyTree
    position: Array
    size: Array
    total_added: Array

    @property
    def capacity(self) -> int:
        """``L``, the number of rows (static)."""
        return jax.tree_util.tree_leaves(self.data)[0].shape[0]


def init(capacity: int, example_item: PyTree) -> ReplayBuffer:
    """An empty buffer of ``capacity`` rows shaped and typed like ``example_item``.

    Args:
      capacity: ``L`` (>= 1).
      example_item: one item (a pytree of arrays without the leading axis).
    """
    check_positive_int("capacity", capacity)
    data = jax.tree.map(
        lambda x: jnp.zeros((capacity, *jnp.shape(x)), jnp.asarray(x).dtype), example_item
    )
    zero = jnp.zeros((), jnp.int32)
    return ReplayBuffer(data=data, position=zero, size=zero, total_added=zero)


def add_batch(buffer: ReplayBuffer, items: PyTree, mask: Array | None = None) -> ReplayBuffer:
    """Append ``T`` items (e.g. one episode's steps) in order; the oldest rows are overwritten
    when full.

    Args:
      buffer: the buffer.
      items: a pytree like the buffer's data with leaves ``[T, ...]``.
      mask: optional ``[T] bool``: only rows where it is True are added (in order, with no
        gaps), so an episode that terminated early adds just its real steps.

    Returns:
      The new buffer.
    """
    capacity = buffer.capacity
    t = jax.tree_util.tree_leaves(items)[0].shape[0]
    if mask is None:
        mask = jnp.ones((t,), bool)
    mask = jnp.asarray(mask, bool)
    # Rank of each kept item among the kept ones: its offset from the write position.
    offset = jnp.cumsum(mask.astype(jnp.int32)) - 1
    num_new = jnp.sum(mask.astype(jnp.int32))
    # Only the last `capacity` kept items can survive; drop the older ones explicitly so no
    # two writes hit one row (scatter order with duplicate indices is unspecified).
    keep = mask & (offset >= num_new - capacity)
    rows = (buffer.position + offset) % capacity
    rows = jnp.where(keep, rows, capacity)  # out of bounds: dropped by mode="drop"
    data = jax.tree.map(
        lambda d, x: d.at[rows].set(x.astype(d.dtype), mode="drop"), buffer.data, items
    )
    return ReplayBuffer(
        data=data,
        position=(buffer.position + num_new) % capacity,
        size=jnp.minimum(buffer.size + num_new, capacity),
        total_added=buffer.total_added + num_new,
    )


def add(buffer: ReplayBuffer, item: PyTree) -> ReplayBuffer:
    """Append one item (leaves without the leading axis)."""
    return add_batch(buffer, jax.tree.map(lambda x: jnp.asarray(x)[None], item))


def finite_rows(items: PyTree) -> Array:
    """``[T] bool``: True for the rows of ``items`` (leaves ``[T, ...]``) whose every value is
    finite; integer and boolean leaves always count as finite.

    The door check for real data: pass ``mask & finite_rows(items)`` to :func:`add_batch` so
    a transition with a NaN or infinite observation, action, reward or next observation never
    reaches the buffer (nor the normaliser and model trained from it).

    Raises:
      ValueError: no leaves, a scalar leaf, or leaves with different leading sizes.
    """
    leaves = [jnp.asarray(x) for x in jax.tree_util.tree_leaves(items)]
    if not leaves or any(x.ndim == 0 for x in leaves):
        raise ValueError("finite_rows needs items whose every leaf has a leading [T] axis")
    t = leaves[0].shape[0]
    if any(x.shape[0] != t for x in leaves):
        shapes = [x.shape for x in leaves]
        raise ValueError(f"finite_rows: every leaf must have the same leading [T]; got {shapes}")
    ok = jnp.ones((t,), bool)
    for x in leaves:
        if jnp.issubdtype(x.dtype, jnp.inexact):
            ok = ok & jnp.all(jnp.isfinite(x.reshape(t, -1)), axis=1)
    return ok


def valid_mask(buffer: ReplayBuffer) -> Array:
    """``[L] bool``: True for the rows that hold data."""
    return jnp.arange(buffer.capacity) < buffer.size


def ordered(buffer: ReplayBuffer) -> tuple[PyTree, Array]:
    """The contents oldest first, as ``(data with leaves [L, ...], mask [L] bool)``."""
    capacity = buffer.capacity
    full = buffer.size == capacity
    start = jnp.where(full, buffer.position, 0)
    index = (start + jnp.arange(capacity)) % capacity
    return jax.tree.map(lambda d: d[index], buffer.data), valid_mask(buffer)


def sample(buffer: ReplayBuffer, key: PRNGKey, batch_size: int) -> PyTree:
    """``batch_size`` items drawn uniformly with replacement from the valid rows.

    The buffer must not be empty (an empty buffer returns zero rows' contents).
    """
    check_positive_int("batch_size", batch_size)
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[idx], buffer.data)
