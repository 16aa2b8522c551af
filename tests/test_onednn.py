"""Tests for jaxmbrl.onednn: the oneDNN dense layer agrees with XLA's dot (values, gradients,
under vmap and scan, when layers run concurrently), is chosen as documented, and its absence
changes nothing but the library.

On x86-64 Linux ``make test`` builds the layer and sets ``JAXMBRL_REQUIRE_ONEDNN=1``, so the
agreement tests run there rather than skip."""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl import onednn
from jaxmbrl.models import ensemble as ens

built = pytest.mark.skipif(
    not onednn.available(), reason="the oneDNN layer is not built (python -m jaxmbrl.onednn build)"
)


def _dtype(name):
    """``name`` as a parameter, skipped where oneDNN has no matmul for it on this CPU (oneDNN
    3.2 has none for bfloat16 without AVX-512: an AMD EPYC family 25 model 1, for one)."""
    no_kernel = onednn.available() and not onednn.runs(name)
    reason = f"oneDNN has no {name} matmul on this CPU (bfloat16 needs AVX-512)"
    return pytest.param(name, marks=pytest.mark.skipif(no_kernel, reason=reason))


DTYPES = [_dtype("float32"), _dtype("bfloat16")]

# Relative to the outputs' largest magnitude; measured 4e-7 (float32) and 5e-4 to 5e-3
# (bfloat16: the two paths round the same bfloat16 operands but sum in another order).
TOL = {"float32": 1e-5, "bfloat16": 2e-2}


def _rel(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(a)))


def test_the_build_is_there_where_make_test_requires_it():
    if os.environ.get("JAXMBRL_REQUIRE_ONEDNN") != "1":
        pytest.skip("JAXMBRL_REQUIRE_ONEDNN is not 1 (make test sets it on x86-64 Linux)")
    assert onednn.available(), (
        "make test built no oneDNN layer: see `python -m jaxmbrl.onednn build`"
    )
    info = onednn.info()
    assert info["version"].startswith("3.") and info["isa"]
    assert set(info["kernels"]) == {"float32", "bfloat16"}


def _config(**kw):
    base = dict(obs_dim=3, action_dim=1, num_members=4, num_elites=3, hidden_sizes=(32, 32))
    return ens.EnsembleConfig(**{**base, **kw})


def _state(config):
    state = ens.init(config, jax.random.key(0))
    # non-zero biases, so a lost bias would show
    noise = lambda p, k: p + 0.1 * jax.random.normal(k, p.shape)
    leaves, tree = jax.tree.flatten(state.params)
    keys = jax.random.split(jax.random.key(1), len(leaves))
    return state.replace(params=jax.tree.unflatten(tree, map(noise, leaves, keys)))


def _both_libraries(dtype):
    """``(config on XLA's dot, the same config on oneDNN, a state for both)``."""
    xla_cfg = _config(matmul_dtype=dtype, dense_library="xla")
    return xla_cfg, dataclasses.replace(xla_cfg, dense_library="onednn"), _state(xla_cfg)


@built
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["silu", "relu", "tanh", "elu"])
def test_dense_layer_agrees_with_xla(dtype, activation):
    kx, kw, kb = jax.random.split(jax.random.key(2), 3)
    x = jax.random.normal(kx, (2, 37, 24))
    w = jax.random.normal(kw, (24, 19)) / 5
    b = jax.random.normal(kb, (19,))
    fused = activation if activation in onednn.FUSED else "none"
    y = onednn.dense(x, w, b, activation=fused, matmul_dtype=dtype)
    if fused != activation:
        y = ens.ACTIVATIONS[activation](y)
    z = jnp.matmul(x.astype(dtype), w.astype(dtype), preferred_element_type=jnp.float32) + b
    ref = ens.ACTIVATIONS[activation](z)
    assert y.shape == (2, 37, 19) and y.dtype == jnp.float32
    assert _rel(ref, y) < TOL[dtype]


@built
@pytest.mark.parametrize("dtype", DTYPES)
def test_ensemble_predictions_agree_with_xla(dtype):
    xla_cfg, dnn_cfg, state = _both_libraries(dtype)
    ko, ka = jax.random.split(jax.random.key(3))
    obs = jax.random.normal(ko, (3, 50, 3))
    act = jax.random.normal(ka, (3, 50, 1))
    for fn in (ens.predict_grouped, lambda c, s, o, a: ens.predict(c, s, o[0], a[0])):
        (m1, v1), (m2, v2) = fn(xla_cfg, state, obs, act), fn(dnn_cfg, state, obs, act)
        assert _rel(m1, m2) < TOL[dtype]
        assert _rel(v1, v2) < TOL[dtype]


@built
def test_onednn_changes_the_compiled_program():
    cfg = _config(dense_library="onednn")
    state = _state(cfg)
    obs, act = jnp.zeros((3, 8, 3)), jnp.zeros((3, 8, 1))
    text = jax.jit(ens.predict_grouped, static_argnums=0).lower(cfg, state, obs, act).as_text()
    assert onednn.TARGET in text
    xla = dataclasses.replace(cfg, dense_library="xla")
    assert (
        onednn.TARGET
        not in jax.jit(ens.predict_grouped, static_argnums=0).lower(xla, state, obs, act).as_text()
    )


@built
@pytest.mark.parametrize("dtype", DTYPES)
def test_gradients_agree_with_xla(dtype):
    xla_cfg, dnn_cfg, state = _both_libraries(dtype)
    x = jax.random.normal(jax.random.key(4), (4, 16, 4))

    def loss(params, config):
        mean, logvar = ens.forward_normalized(config, params, x)
        return jnp.sum(jnp.sin(mean)) + jnp.sum(logvar**2)

    g1 = jax.grad(loss)(state.params, xla_cfg)
    g2 = jax.jit(jax.grad(loss), static_argnums=1)(state.params, dnn_cfg)
    for a, b in zip(jax.tree.leaves(g1), jax.tree.leaves(g2), strict=True):
        assert _rel(a, b) < 10 * TOL[dtype]


@built
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_mode_agrees_with_xla(dtype):
    # jvp and jacfwd of a prediction with respect to the observation (a gradient-based
    # planner's use), and a Hessian-vector product (forward over reverse).
    xla_cfg, dnn_cfg, state = _both_libraries(dtype)
    obs, act = jax.random.normal(jax.random.key(5), (2, 3)), jnp.ones((2, 1))

    def predict(o, config):
        return ens.predict(config, state, o, act)[0]

    tangent = jnp.ones_like(obs)
    (p1, t1), (p2, t2) = (
        jax.jit(lambda o, c=c: jax.jvp(lambda u: predict(u, c), (o,), (tangent,)))(obs)
        for c in (xla_cfg, dnn_cfg)
    )
    assert _rel(p1, p2) < TOL[dtype] and _rel(t1, t2) < 10 * TOL[dtype]
    j1, j2 = (jax.jit(jax.jacfwd(predict), static_argnums=1)(obs, c) for c in (xla_cfg, dnn_cfg))
    assert j1.shape == (4, 2, 3, 2, 3) and _rel(j1, j2) < 10 * TOL[dtype]

    def hvp(o, config):
        grad = jax.grad(lambda u: jnp.sum(jnp.sin(predict(u, config))))
        return jax.jvp(grad, (o,), (tangent,))[1]

    h1, h2 = (jax.jit(hvp, static_argnums=1)(obs, c) for c in (xla_cfg, dnn_cfg))
    assert np.all(np.isfinite(h2)) and _rel(h1, h2) < 10 * TOL[dtype]


@built
def test_vmap_and_scan_batch_the_call():
    cfg = _config(dense_library="onednn")
    ref_cfg = dataclasses.replace(cfg, dense_library="xla")
    state = _state(cfg)
    obs = jax.random.normal(jax.random.key(5), (6, 3, 10, 3))
    act = jnp.ones((6, 3, 10, 1))

    def rollout(config):
        def step(o, a):
            mean, _ = ens.predict_grouped(config, state, o, a)
            return o + 0.1 * mean, mean

        return jax.vmap(lambda o, a: jax.lax.scan(step, o, jnp.stack([a] * 4))[1])(obs, act)

    out = jax.jit(rollout, static_argnums=0)(cfg)
    assert out.shape == (6, 4, 3, 10, 3)
    assert _rel(rollout(ref_cfg), out) < TOL["float32"]


@built
def test_repeated_concurrent_calls_give_the_same_numbers():
    # Independent layers in one program, which XLA may run at once on several threads (as it
    # did with the ensemble's per-group calls), and from several Python threads at once: a
    # scratchpad shared between calls made the results depend on timing (once in four runs).
    import concurrent.futures

    keys = jax.random.split(jax.random.key(6), 3)
    xs = jax.random.normal(keys[0], (6, 300, 64))
    ws = jax.random.normal(keys[1], (3, 64, 64)) / 8
    bs = jax.random.normal(keys[2], (3, 64))

    @jax.jit
    def chains(xs):
        outs = []
        for i in range(xs.shape[0]):  # six independent chains of three layers
            h = xs[i]
            for layer in range(3):
                h = onednn.dense(h, ws[layer] * (1 + i), bs[layer], activation="silu")
            outs.append(h)
        return jnp.stack(outs)

    first = np.asarray(chains(xs))
    ref = xs
    for layer in range(3):
        scale = (1 + jnp.arange(6.0))[:, None, None]
        ref = jax.nn.silu(jnp.matmul(ref, ws[layer] * scale) + bs[layer])
    assert _rel(ref, first) < TOL["float32"]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: np.asarray(chains(xs)), range(24)))
    for r in results:
        np.testing.assert_array_equal(r, first)


def test_both_libraries_have_the_same_parameters():
    for library in ("xla", "auto") + (("onednn",) if onednn.available() else ()):
        state = ens.init(_config(dense_library=library), jax.random.key(0))
        ref = ens.init(_config(dense_library="xla"), jax.random.key(0))
        assert jax.tree.structure(state.params) == jax.tree.structure(ref.params)
        for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(ref.params), strict=True):
            np.testing.assert_array_equal(a, b)


def test_choice_rules(monkeypatch):
    with pytest.raises(ValueError, match="unknown dense library 'mkl'"):
        onednn.resolve("mkl", "float32")
    with pytest.raises(ValueError, match="dense_library"):
        _config(dense_library="mkl")
    assert onednn.resolve("xla", "bfloat16") == "xla"
    amx = {
        "vendor_id": "GenuineIntel",
        "cpu family": "6",
        "model": "143",
        "flags": "avx512f amx_bf16",
    }
    assert onednn.preferred_dtypes(amx) == ("bfloat16",)
    plain = {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "85", "flags": "avx512f"}
    assert onednn.preferred_dtypes(plain) == ()
    for (vendor, family, model), dtypes in onednn.MEASURED.items():
        cpu = {"vendor_id": vendor, "cpu family": family, "model": model, "flags": ""}
        assert onednn.preferred_dtypes(cpu) == dtypes
    # Not built: "auto" is XLA, "onednn" a clear error.
    monkeypatch.setattr(onednn, "_load", lambda: None)
    monkeypatch.setattr(onednn, "preferred_dtypes", lambda cpu=None: ("float32", "bfloat16"))
    assert onednn.resolve("auto", "bfloat16") == "xla"
    with pytest.raises(RuntimeError, match=r"python -m jaxmbrl\.onednn build"):
        onednn.resolve("onednn", "float32")
    cfg = _config(dense_library="auto", matmul_dtype="bfloat16")
    state = ens.init(cfg, jax.random.key(0))
    obs, act = jnp.zeros((3, 2, 3)), jnp.zeros((3, 2, 1))
    lowered = jax.jit(ens.predict_grouped, static_argnums=0).lower(cfg, state, obs, act)
    assert onednn.TARGET not in lowered.as_text()
    assert ens.predict_grouped(cfg, state, obs, act)[0].shape == (3, 2, 3)


def test_environment_overrides_auto(monkeypatch):
    monkeypatch.setenv(onednn.ENV_VAR, "xla")
    monkeypatch.setattr(onednn, "preferred_dtypes", lambda cpu=None: ("float32", "bfloat16"))
    assert onednn.resolve("auto", "bfloat16") == "xla"
    if onednn.available():
        monkeypatch.setenv(onednn.ENV_VAR, " oneDNN ")
        assert onednn.resolve("auto", "float32") == "onednn"
        assert onednn.resolve("xla", "float32") == "xla"  # an explicit choice wins
    monkeypatch.setenv(onednn.ENV_VAR, "mkl")
    with pytest.raises(ValueError, match="JAXMBRL_DENSE='mkl'"):
        onednn.resolve("auto", "float32")


def test_auto_planning_dtype_is_bfloat16_only_where_onednn_runs_it(monkeypatch):
    # Explicit dtypes pass through; "auto" follows what a bfloat16 layer would run with.
    assert ens.resolve_matmul_dtype("float32") == "float32"
    assert ens.resolve_matmul_dtype("bfloat16", "xla") == "bfloat16"
    assert ens.resolve_matmul_dtype("auto", "xla") == "float32"
    asked = []

    def fake(library, dtype, runs):
        asked.append((library, dtype))
        return runs

    monkeypatch.setattr(onednn, "preferred_dtypes", lambda cpu=None: ("bfloat16",))
    monkeypatch.setattr(onednn, "has_kernel", lambda dtype: True)
    monkeypatch.setattr(onednn, "resolve", lambda lib, dt: fake(lib, dt, "onednn"))
    assert ens.resolve_matmul_dtype("auto", "auto") == "bfloat16"
    monkeypatch.setattr(onednn, "resolve", lambda lib, dt: fake(lib, dt, "xla"))
    assert ens.resolve_matmul_dtype("auto", "auto") == "float32"
    assert asked == [("auto", "bfloat16")] * 2
    # An explicit "onednn" skips the CPU rules of "auto"; the dtype still asks them.
    monkeypatch.setattr(onednn, "resolve", lambda lib, dt: "onednn")
    monkeypatch.setattr(onednn, "has_kernel", lambda dtype: False)  # e.g. an AVX2 CPU
    assert ens.resolve_matmul_dtype("auto", "onednn") == "float32"
    monkeypatch.setattr(onednn, "has_kernel", lambda dtype: True)
    monkeypatch.setattr(onednn, "preferred_dtypes", lambda cpu=None: ("float32",))
    assert ens.resolve_matmul_dtype("auto", "onednn") == "float32"
    with pytest.raises(ValueError, match="matmul_dtype"):
        ens.resolve_matmul_dtype("float16")


def test_pets_setup_resolves_auto_planning_dtype(monkeypatch):
    from jaxmbrl.agents.pets import PETSConfig, pets_setup

    assert PETSConfig().planning_matmul_dtype == "float32"
    mbrl = PETSConfig.preset("mbrl-lib")
    assert mbrl.planning_matmul_dtype == "auto"
    # A process told to use XLA's dot plans the preset in float32 ...
    monkeypatch.setenv(onednn.ENV_VAR, "xla")
    assert pets_setup(mbrl).planning_matmul_dtype == "float32"
    # ... and one whose bfloat16 layers run through oneDNN, in bfloat16.
    monkeypatch.setattr(onednn, "resolve", lambda lib, dt: "onednn")
    monkeypatch.setattr(onednn, "preferred_dtypes", lambda cpu=None: ("bfloat16",))
    monkeypatch.setattr(onednn, "has_kernel", lambda dtype: True)
    assert pets_setup(mbrl).planning_matmul_dtype == "bfloat16"
    # An explicit dtype is kept whatever the machine.
    explicit = dataclasses.replace(mbrl, planning_matmul_dtype="float32")
    assert pets_setup(explicit).planning_matmul_dtype == "float32"
    with pytest.raises(ValueError, match="planning_matmul_dtype"):
        dataclasses.replace(mbrl, planning_matmul_dtype="float16")


@built
def test_no_kernel_is_a_clear_error_and_auto_avoids_it():
    # What a CPU without AVX-512 gets for bfloat16 from oneDNN 3.2: no kernel. oneDNN's
    # ONEDNN_MAX_CPU_ISA makes this CPU one, in a fresh process.
    import subprocess
    import sys

    code = (
        "import jaxmbrl, jax.numpy as jnp\n"
        "from jaxmbrl import onednn\n"
        "print(onednn.implementation('bfloat16', 8, 4, 4))\n"
        "print(onednn.has_kernel('bfloat16'), onednn.has_kernel('float32'))\n"
        "print(onednn.resolve('auto', 'bfloat16'), onednn.runs('bfloat16'))\n"
        "try:\n"
        "    onednn.resolve('onednn', 'bfloat16')\n"
        "except RuntimeError as e:\n"
        "    print('error', str(e).splitlines()[0])\n"
        "try:\n"
        "    x, w, b = jnp.ones((8, 4)), jnp.ones((4, 4)), jnp.zeros(4)\n"
        "    onednn.dense(x, w, b, matmul_dtype='bfloat16')\n"
        "except Exception as e:\n"
        "    print('error', str(e).splitlines()[0])\n"
    )
    env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2", JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("unavailable")
    assert lines[1] == "False True"
    assert lines[2] == "xla False"
    # the explicit library, in resolve (a config's boundary) and in dense, before tracing
    for line in lines[3:5]:
        assert line.startswith("error") and "has no bfloat16 matmul on this CPU" in line
    assert len(lines) == 5


def test_bad_arguments_are_clear_errors():
    x, w, b = jnp.zeros((4, 3)), jnp.zeros((3, 2)), jnp.zeros((2,))
    with pytest.raises(ValueError, match="fuses"):
        onednn.dense(x, w, b, activation="gelu")
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        onednn.dense(x, w, b, matmul_dtype="float16")
    with pytest.raises(ValueError, match="float32 or bfloat16"):
        onednn.dense(x, w, b, out_dtype="mkl")  # not a dtype at all: the same message
    with pytest.raises(ValueError, match="float32 or bfloat16 operands, not 'float16'"):
        onednn.implementation("float16", 8, 4, 4)
    with pytest.raises(ValueError, match="float32 or bfloat16 operands, not 'float16'"):
        onednn.runs("float16")
    with pytest.raises(ValueError, match=r"x \[..., K\], kernel \[K, N\], bias \[N\]"):
        onednn.dense(x, w.T, b)
    with pytest.raises(ValueError, match="K >= 1"):
        onednn.dense(jnp.zeros((4, 0)), jnp.zeros((0, 2)), b)


def test_old_checkpoint_configs_load_with_auto():
    d = _config().to_dict()
    d.pop("dense_library")
    assert ens.EnsembleConfig.from_dict(d).dense_library == "auto"
