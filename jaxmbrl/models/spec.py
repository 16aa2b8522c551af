"""What model to learn before an environment fixes its sizes: :class:`ModelSpec`.

An algorithm's config holds a ``ModelSpec``; the algorithm turns it into an
:class:`~jaxmbrl.models.ensemble.EnsembleConfig` once the environment's observation and
action sizes (and whether the reward must be learned) are known.
"""

from __future__ import annotations

import dataclasses

from jaxmbrl.models.ensemble import EnsembleConfig


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """An ensemble's configuration without its input/output sizes (hashable, static).

    Attributes:
      num_members: ``E``, ensemble members (>= 1).
      num_elites: ``G``, members that propagate particles after training (1..E).
      hidden_sizes: widths of each member's hidden layers.
      activation: hidden activation name (see ``jaxmbrl.models.ensemble.ACTIVATIONS``).
      deterministic: plain regression heads instead of Gaussian mean / log-variance heads.
      min_logvar, max_logvar: the Gaussian head's soft log-variance bounds.
      learn_logvar_bounds: train those bounds (PETS's penalty).

    Every field means what it does in :class:`~jaxmbrl.models.ensemble.EnsembleConfig`, which
    also validates them (at construction, with sizes of 1).
    """

    num_members: int = 7
    num_elites: int = 5
    hidden_sizes: tuple[int, ...] = (200, 200, 200, 200)
    activation: str = "silu"
    deterministic: bool = False
    min_logvar: float = -10.0
    max_logvar: float = 0.5
    learn_logvar_bounds: bool = False

    def __post_init__(self):
        try:
            object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        except TypeError as e:
            raise ValueError(
                f"hidden_sizes must be a sequence of ints, got {self.hidden_sizes!r}"
            ) from e
        self.ensemble(obs_dim=1, action_dim=1, learn_reward=False)  # validates every field

    def ensemble(
        self, *, obs_dim: int, action_dim: int, learn_reward: bool, matmul_dtype: str = "float32"
    ) -> EnsembleConfig:
        """The :class:`EnsembleConfig` for an environment's sizes ``O`` and ``A`` (or ``D``)."""
        return EnsembleConfig(
            obs_dim=obs_dim,
            action_dim=action_dim,
            learn_reward=learn_reward,
            matmul_dtype=matmul_dtype,
            **dataclasses.asdict(self),
        )


__all__ = ["ModelSpec"]
