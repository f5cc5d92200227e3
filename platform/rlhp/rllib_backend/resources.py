"""Where RLlib's Learners learn: one GPU each when ``device`` and the GPUs there allow it.

Pure (no Ray import), so the same rule runs before Ray starts (``preflight``, counting this
machine's GPUs for a local cluster) and after it joined one (``RLlibPolicy``, counting the
cluster's GPUs for Learner actors).
"""

from __future__ import annotations

from rlhp.algos.config import TrainingConfig
from rlhp.errors import ConfigError


def learner_gpus(cfg: TrainingConfig, gpus: int) -> int:
    """GPUs per Learner (0 or 1) for ``learner.backend=rllib``.

    ``gpus`` counts the GPUs the Learners can reach: the cluster's for Learner actors
    (``learner.rllib.num_learners >= 1``), this process's for the Learner in the driver.
    ``device=cuda`` with fewer GPUs than Learners is bad input, named in one line;
    ``device=auto`` falls back to CPUs then.
    """
    learners = cfg.learner.rllib.num_learners
    if cfg.device == "cpu":
        return 0
    if gpus >= max(1, learners):
        return 1
    if cfg.device == "auto":
        return 0
    if learners == 0:
        raise ConfigError(
            "device: cuda was asked for but the run's driver sees no GPU; use device=auto, "
            "or learner.rllib.num_learners=1 to learn in a Learner actor on a cluster GPU"
        )
    raise ConfigError(
        f"learner.rllib.num_learners: {learners} Learners on GPUs (device=cuda) need "
        f"{learners} GPUs and there are {gpus}; set learner.rllib.num_learners={gpus} "
        "or fewer, or device=cpu"
    )
