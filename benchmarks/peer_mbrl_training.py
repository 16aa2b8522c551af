#!/usr/bin/env python
"""mbrl-lib 0.2.0 model-training throughput: the peer side of ``bench_training.py``.

Run with the peer environment's python (mbrl-lib 0.2.0 and torch; ``PEER_TORCH``, default
``/tmp/peer-torch``), not with jaxmbrl's::

  $PEER_TORCH/bin/python benchmarks/peer_mbrl_training.py --data DATA.npz --epochs 5 \
      --repeats 3 --tuned-malloc

Builds mbrl-lib's PETS model the way ``mbrl/algorithms/pets.py`` does
(``mbrl.util.common.create_one_dim_tr_model`` from the installed
``conf/dynamics_model/gaussian_mlp_ensemble.yaml``: GaussianMLP, 7 members, 4 x 200 SiLU),
fills a ``ReplayBuffer`` with the transitions in ``DATA.npz`` (arrays ``obs``, ``action``,
``next_obs``, ``reward``), fits the normaliser, and times ``ModelTrainer.train`` (Adam,
lr 7.5e-4, weight decay 3e-5, batch 256, bootstrap iterators, per-epoch validation, no
early stopping) over ``--epochs`` epochs. Prints one ``RESULT {json}`` line.

Hydra >= 1.1 needs ``_recursive_: false`` on the model config for mbrl 0.2.0 (Hydra >= 1.1
instantiates nested ``_target_`` configs recursively, and model creation then fails on the
``SiLU`` activation; the flag restores Hydra 1.0's behaviour); nothing else is changed.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import json
import math
import os
import pathlib
import platform
import statistics
import sys
import time


def parse_args() -> argparse.Namespace:
    """The flags; with ``--tuned-malloc`` the process re-executes itself once."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="npz with obs, action, next_obs, reward")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per timed repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--validation-ratio", type=float, default=0.2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--tuned-malloc",
        action="store_true",
        help="re-exec with MALLOC_MMAP_THRESHOLD_=MALLOC_TRIM_THRESHOLD_=4 GiB (glibc's "
        "default mmaps multi-MB temporaries and page-faults them on every op, which makes "
        "torch timings bimodal between processes)",
    )
    args = parser.parse_args()
    if args.tuned_malloc and os.environ.get("MALLOC_MMAP_THRESHOLD_") is None:
        env = dict(
            os.environ, MALLOC_MMAP_THRESHOLD_=str(1 << 32), MALLOC_TRIM_THRESHOLD_=str(1 << 32)
        )
        os.execve(sys.executable, [sys.executable, *sys.argv], env)
    return args


def mbrl_config(omegaconf, conf: pathlib.Path):
    """mbrl-lib's PETS config (``pets_cartpole`` overrides, Gaussian MLP ensemble)."""
    overrides = omegaconf.OmegaConf.load(conf / "overrides" / "pets_cartpole.yaml")
    cfg = omegaconf.OmegaConf.create(
        {
            "algorithm": omegaconf.OmegaConf.load(conf / "algorithm" / "pets.yaml"),
            "dynamics_model": omegaconf.OmegaConf.load(
                conf / "dynamics_model" / "gaussian_mlp_ensemble.yaml"
            ),
            "overrides": overrides,
            "device": "cpu",
            "seed": 0,
        }
    )
    cfg.dynamics_model["_recursive_"] = False
    return cfg, overrides


def build_trainer(args, cfg, overrides):
    """``(model, trainer, train iterator, validation iterator)`` on the data in ``--data``."""
    import mbrl.models
    import mbrl.util.common
    import mbrl.util.replay_buffer
    import numpy as np

    data = np.load(args.data)
    obs, action = data["obs"].astype(np.float32), data["action"].astype(np.float32)
    next_obs, reward = data["next_obs"].astype(np.float32), data["reward"].astype(np.float32)
    n = obs.shape[0]
    model = mbrl.util.common.create_one_dim_tr_model(cfg, obs.shape[1:], action.shape[1:])
    rng = np.random.default_rng(0)
    buffer = mbrl.util.replay_buffer.ReplayBuffer(n, obs.shape[1:], action.shape[1:], rng=rng)
    done = np.zeros(n, bool)
    buffer.add_batch(obs, action, next_obs, reward, done, done)
    model.update_normalizer(buffer.get_all())
    batch_size = int(overrides.model_batch_size)
    train_it, val_it = mbrl.util.common.get_basic_buffer_iterators(
        buffer, batch_size, args.validation_ratio, ensemble_size=len(model), shuffle_each_epoch=True
    )
    trainer = mbrl.models.ModelTrainer(
        model, optim_lr=float(overrides.model_lr), weight_decay=float(overrides.model_wd)
    )
    return model, trainer, train_it, val_it


def timed_epochs(args, trainer, train_it, val_it) -> list[float]:
    """Seconds of ``--repeats`` timed training calls of ``--epochs`` epochs (after a warm-up)."""
    trainer.train(train_it, dataset_val=val_it, num_epochs=1, patience=None, silent=True)  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        trainer.train(
            train_it, dataset_val=val_it, num_epochs=args.epochs, patience=None, silent=True
        )
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    args = parse_args()
    import mbrl
    import omegaconf
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    conf = pathlib.Path(mbrl.__file__).parent / "examples" / "conf"
    cfg, overrides = mbrl_config(omegaconf, conf)
    model, trainer, train_it, val_it = build_trainer(args, cfg, overrides)
    batch_size = int(overrides.model_batch_size)
    n_train = train_it.num_stored
    times = timed_epochs(args, trainer, train_it, val_it)
    sps = [n_train * args.epochs / t for t in times]
    dm = cfg.dynamics_model
    result = {
        "library": "mbrl-lib",
        "versions": {p: md.version(p) for p in ("mbrl", "torch", "numpy")},
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "malloc_tuned": os.environ.get("MALLOC_MMAP_THRESHOLD_") is not None,
        "model": {
            "ensemble_size": int(dm.ensemble_size),
            "num_layers": int(dm.num_layers),
            "hid_size": int(dm.hid_size),
            "deterministic": bool(dm.deterministic),
            "in_size": int(model.model.in_size),
            "out_size": int(model.model.out_size),
        },
        "batch_size": batch_size,
        "num_train": int(n_train),
        "num_val": int(val_it.num_stored) if val_it is not None else 0,
        "epochs_per_repeat": args.epochs,
        "seconds": times,
        "samples_per_s": sps,
        "samples_per_s_median": statistics.median(sps),
        "samples_per_s_min": min(sps),
        "samples_per_s_max": max(sps),
    }
    print("RESULT " + json.dumps(_strict(result), allow_nan=False), flush=True)


def _strict(tree):
    """``tree`` with every non-finite float as ``None`` (JSON null): strict RFC 8259 JSON.

    The peer environment has no jaxmbrl, so this is ``jaxmbrl.reporting.strict_json`` for
    the plain Python values (dicts, lists, floats, ints, str) this script reports.
    """
    if isinstance(tree, dict):
        return {k: _strict(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_strict(v) for v in tree]
    if isinstance(tree, float) and not math.isfinite(tree):
        return None
    return tree


if __name__ == "__main__":
    main()
