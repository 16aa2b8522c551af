"""Environments by name, across families: ``load(name)`` dispatches on the name's prefix.

* ``playground:<Task>``: MuJoCo Playground's DeepMind Control suite
  (:func:`jaxmbrl.envs.brax_style.load_playground`);
* ``brax:<name>[@backend]``: Brax (:func:`jaxmbrl.envs.brax_style.load_brax`);
* ``gymnasium:<id>``: gymnasium on the host (:mod:`jaxmbrl.envs.gymnasium_adapter`);
* anything else: gymnax ids, ``PointMass-v0`` and ``package.module:function``
  (:func:`jaxmbrl.envs.gymnax_adapter.load`).

A family's module is imported only when one of its names is loaded, so the optional
libraries (the ``mujoco`` extra) stay unimported otherwise.
"""

from __future__ import annotations

from typing import Any

from jaxmbrl.envs import gymnax_adapter
from jaxmbrl.envs.spec import EnvSpec

FAMILIES = ("playground", "brax", "gymnasium")
"""The prefixes ``load`` dispatches on (checked before gymnax's ``module:function``)."""


def family_of(name: str) -> str:
    """The family a name belongs to: one of :data:`FAMILIES`, or ``"gymnax"``."""
    prefix, sep, _ = name.partition(":")
    return prefix if sep and prefix in FAMILIES else "gymnax"


def load(name: str, episode_length: int | None = None, **kwargs: Any) -> tuple[EnvSpec, Any]:
    """Load an environment by name as ``(EnvSpec, Environment)``.

    Args:
      name: a name of any family (see the module docstring).
      episode_length: ``T`` real steps per episode, overriding the environment's.
      **kwargs: passed to the family's loader (``action_repeat=`` for ``playground:`` and
        ``brax:``; gymnax's environment arguments otherwise).

    Raises:
      ValueError: one line, for an unknown name (listing the family's known ones), a bad
        backend or option, or a family whose optional libraries are not installed.
    """
    family = family_of(name)
    rest = name.partition(":")[2]
    if family == "playground":
        from jaxmbrl.envs import brax_style

        return brax_style.load_playground(rest, episode_length, **kwargs)
    if family == "brax":
        from jaxmbrl.envs import brax_style

        return brax_style.load_brax(rest, episode_length, **kwargs)
    if family == "gymnasium":
        from jaxmbrl.envs import gymnasium_adapter

        return gymnasium_adapter.load(rest, episode_length, **kwargs)
    return gymnax_adapter.load(name, episode_length, **kwargs)


__all__ = ["FAMILIES", "family_of", "load"]
