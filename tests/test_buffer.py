"""The replay buffer never loses or duplicates an item, wrap-around included."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl import buffer as rb


def _items(start, count):
    ids = jnp.arange(start, start + count, dtype=jnp.int32)
    return {"id": ids, "obs": jnp.stack([ids, -ids], axis=1).astype(jnp.float32)}


@pytest.mark.parametrize("use_jit", [False, True])
@pytest.mark.parametrize("capacity", [1, 7, 10, 64])
def test_contents_are_exactly_the_last_capacity_items(use_jit, capacity):
    add = jax.jit(rb.add_batch) if use_jit else rb.add_batch
    buf = rb.init(capacity, {"id": jnp.int32(0), "obs": jnp.zeros(2)})
    added = 0
    for count in [3, 5, 1, 13, 4, 0, 9]:
        buf = add(buf, _items(added, count))
        added += count
        data, mask = rb.ordered(buf)
        ids = np.asarray(data["id"])[np.asarray(mask)]
        expected = np.arange(max(0, added - capacity), added)
        np.testing.assert_array_equal(ids, expected)  # none lost, none duplicated, in order
        np.testing.assert_array_equal(np.asarray(data["obs"])[np.asarray(mask), 1], -expected)
        assert int(buf.size) == min(added, capacity)
        assert int(buf.total_added) == added


def test_masked_add_keeps_only_real_steps_in_order():
    buf = rb.init(5, {"id": jnp.int32(0), "obs": jnp.zeros(2)})
    mask = jnp.array([True, False, True, True, False, True, True, True])
    buf = rb.add_batch(buf, _items(0, 8), mask)
    data, valid = rb.ordered(buf)
    np.testing.assert_array_equal(np.asarray(data["id"])[np.asarray(valid)], [2, 3, 5, 6, 7])


def test_single_add_and_valid_mask():
    buf = rb.init(3, {"id": jnp.int32(0), "obs": jnp.zeros(2)})
    buf = rb.add(buf, {"id": jnp.int32(4), "obs": jnp.ones(2)})
    np.testing.assert_array_equal(rb.valid_mask(buf), [True, False, False])
    assert int(buf.data["id"][0]) == 4


def test_sample_draws_only_valid_rows():
    buf = rb.init(100, {"id": jnp.int32(0), "obs": jnp.zeros(2)})
    buf = rb.add_batch(buf, _items(1, 10))
    batch = rb.sample(buf, jax.random.key(0), 500)
    ids = np.asarray(batch["id"])
    assert ids.min() >= 1 and ids.max() <= 10 and len(set(ids.tolist())) == 10


def test_vmap_over_independent_buffers():
    bufs = jax.vmap(lambda _: rb.init(4, {"id": jnp.int32(0), "obs": jnp.zeros(2)}))(jnp.arange(3))
    items = jax.vmap(lambda s: _items(0, 6) | {"id": jnp.arange(6, dtype=jnp.int32) + 10 * s})(
        jnp.arange(3)
    )
    bufs = jax.vmap(rb.add_batch)(bufs, items)
    data, mask = jax.vmap(rb.ordered)(bufs)
    for s in range(3):
        np.testing.assert_array_equal(
            np.asarray(data["id"][s])[np.asarray(mask[s])], 10 * s + np.arange(2, 6)
        )


def test_bad_capacity():
    with pytest.raises(ValueError, match="capacity"):
        rb.init(0, {"id": jnp.int32(0)})
