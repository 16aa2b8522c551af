"""Tests for jaxmbrl.cpu_dot: naming, selecting and detecting XLA:CPU's dot library, and the
ensemble giving the same predictions whichever library runs its dense layers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxmbrl import cpu_dot, models

cpu_only = pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's dot libraries")


@cpu_only
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_dot_library_reads_what_the_options_select(dtype):
    assert cpu_dot.dot_library(dtype, options=cpu_dot.compiler_options("xla")) == "xla"
    for name in ("ynnpack", "ynnpack_dot"):
        assert cpu_dot.dot_library(dtype, options=cpu_dot.compiler_options(name)) == "ynnpack"


def test_unknown_library_is_a_clear_error():
    for call in (cpu_dot.compiler_options, cpu_dot.xla_flag, cpu_dot.use):
        with pytest.raises(ValueError, match="unknown CPU dot library 'onednn'"):
            call("onednn")


def test_dot_library_takes_the_two_planning_dtypes_by_any_spelling():
    assert cpu_dot.dot_library(jnp.bfloat16) == cpu_dot.dot_library("bfloat16")
    assert cpu_dot.dot_library(np.dtype("float32")) == cpu_dot.dot_library("float32")
    with pytest.raises(ValueError, match="must be 'float32' or 'bfloat16', got 'float16'"):
        cpu_dot.dot_library("float16")
    with pytest.raises(ValueError, match="got 'f32'"):
        cpu_dot.dot_library("f32")


def test_xla_flag_spells_the_option():
    assert cpu_dot.xla_flag("xla") == f"--{cpu_dot.YNN_OPTION}="
    assert cpu_dot.xla_flag("ynnpack") == f"--{cpu_dot.YNN_OPTION}={cpu_dot.YNN_DEFAULT}"


def test_preferred_follows_the_measured_cpu_kinds():
    for cpu, library in cpu_dot.MEASURED.items():
        vendor, family, model = cpu
        info = {"vendor_id": vendor, "cpu family": family, "model": model, "flags": "fpu sse"}
        assert cpu_dot.preferred(info) == library
    unmeasured = {"vendor_id": "GenuineIntel", "cpu family": "6", "model": "999", "flags": "sse"}
    assert cpu_dot.preferred(unmeasured) == "ynnpack"
    assert cpu_dot.preferred({}) == "ynnpack"


def _predict(config, state, obs, act, library):
    fn = jax.jit(
        lambda s, o, a: models.predict(config, s, o, a),
        compiler_options=cpu_dot.compiler_options(library),
    )
    return jax.tree.map(np.asarray, fn(state, obs, act))


@cpu_only
@pytest.mark.parametrize("dtype, rtol", [("float32", 1e-5), ("bfloat16", 2e-2)])
def test_ensemble_predictions_agree_across_libraries(dtype, rtol):
    # The mbrl-lib model's layer widths (4 x 200 SiLU, 7 members, Gaussian head), planning rows.
    config = models.EnsembleConfig(obs_dim=3, action_dim=1, matmul_dtype=dtype)
    state = models.init(config, jax.random.key(0))
    k1, k2 = jax.random.split(jax.random.key(1))
    obs = jax.random.normal(k1, (512, 3))
    act = jax.random.uniform(k2, (512, 1), minval=-2.0, maxval=2.0)
    ynn_mean, ynn_var = _predict(config, state, obs, act, "ynnpack")
    xla_mean, xla_var = _predict(config, state, obs, act, "xla")
    assert ynn_mean.shape == (7, 512, 3)
    scale = np.abs(ynn_mean).max()  # an error relative to the output's size, not per entry
    np.testing.assert_allclose(xla_mean, ynn_mean, rtol=0, atol=rtol * scale)
    np.testing.assert_allclose(xla_var, ynn_var, rtol=10 * rtol, atol=0)
    # Two different programs were compared, not one program with itself.
    assert _runs_ynnpack(config, state, obs, act, "ynnpack")
    assert not _runs_ynnpack(config, state, obs, act, "xla")


def _runs_ynnpack(config, state, obs, act, library):
    fn = jax.jit(lambda s, o, a: models.predict(config, s, o, a))
    text = fn.lower(state, obs, act).compile(cpu_dot.compiler_options(library)).as_text()
    return "__ynn_fusion" in text


def _run(code: str, **env) -> str:
    environ = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", cpu_dot.ENV_VAR)}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=environ | env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return out.stdout.strip().splitlines()[-1]


RECORD = "import jaxmbrl; print(jaxmbrl.reporting.machine_record()['dot_library']['float32'])"


@cpu_only
def test_environment_variable_selects_the_library_for_the_process():
    assert _run(RECORD, JAXMBRL_CPU_DOT=" XLA ") == "xla"
    assert _run(RECORD, JAXMBRL_CPU_DOT="ynnpack") == "ynnpack"
    # The user's XLA_FLAGS win over the variable.
    assert _run(RECORD, XLA_FLAGS=cpu_dot.xla_flag("xla"), JAXMBRL_CPU_DOT="ynnpack") == "xla"
    auto = "import jaxmbrl; print(jaxmbrl.cpu_dot.dot_library(), jaxmbrl.cpu_dot.preferred())"
    ran, preferred = _run(auto).split()
    assert ran == ("ynnpack" if preferred.startswith("ynnpack") else preferred)


@cpu_only
def test_choosing_after_the_backend_started_warns_and_changes_nothing():
    code = """
        import warnings
        import jax.numpy as jnp
        jnp.zeros(())  # starts JAX's backend, as importing gymnax does
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            import jaxmbrl
        ours = [x for x in w if "CPU dot library" in str(x.message)]
        print(len(ours), jaxmbrl.cpu_dot.dot_library())
    """
    assert _run(code, JAXMBRL_CPU_DOT="xla").split() == ["1", "ynnpack"]


@pytest.fixture
def fresh(monkeypatch):
    """A process whose backend has not started, on an unmeasured CPU, with no XLA_FLAGS."""
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    monkeypatch.setattr(cpu_dot, "_backends_started", lambda: False)
    monkeypatch.setattr(cpu_dot, "cpu_fields", lambda: {"vendor_id": "GenuineIntel"})
    return monkeypatch


def test_use_writes_the_flag_only_when_it_should(fresh):
    assert not cpu_dot.use("auto") and "XLA_FLAGS" not in os.environ  # unmeasured: default
    assert not cpu_dot.use("off") and "XLA_FLAGS" not in os.environ
    assert cpu_dot.use("xla") and os.environ["XLA_FLAGS"] == cpu_dot.xla_flag("xla")
    assert not cpu_dot.use("ynnpack_dot", warn=False)  # the flag is named now: it wins
    with pytest.warns(UserWarning, match="wins over the CPU dot library 'ynnpack'"):
        cpu_dot.use("ynnpack")
    assert os.environ["XLA_FLAGS"] == cpu_dot.xla_flag("xla")


def test_auto_on_a_measured_cpu_keeps_the_users_other_flags(fresh):
    (vendor, family, model), library = next(iter(cpu_dot.MEASURED.items()))
    cpu = {"vendor_id": vendor, "cpu family": family, "model": model}
    fresh.setattr(cpu_dot, "cpu_fields", lambda: cpu)
    fresh.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
    assert cpu_dot.use("auto")
    assert os.environ["XLA_FLAGS"].split() == [
        "--xla_force_host_platform_device_count=2",
        cpu_dot.xla_flag(library),
    ]


def test_an_unchecked_jaxlib_never_gets_the_flag(fresh):
    fresh.setattr(cpu_dot, "_jaxlib_version", lambda: "0.99.0")
    with pytest.warns(UserWarning, match="jaxlib 0.99.0"):
        assert not cpu_dot.use("xla")
    assert "XLA_FLAGS" not in os.environ
