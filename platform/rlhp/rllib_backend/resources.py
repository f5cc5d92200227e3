"""Where RLlib's Learners learn: one GPU each when ``device`` and the GPUs there allow it.

Pure (no Ray import), so the same rule runs before Ray starts (``preflight``, counting this
machine's GPUs for a local cluster) and after it joined one (``RLlibPolicy``, counting the
GPUs the run's other actors left free for Learner actors).

The Learner inside the driver (``learner.rllib.num_learners=0``) uses the driver's GPU
directly and may share it with the reward trainer; Learner actors take whole GPUs that Ray
accounts for, so the GPU bundle the reward trainer reserves is not theirs.
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
        f"{learners} GPUs and {gpus} are free for them (a preference run's reward trainer "
        f"keeps one); set learner.rllib.num_learners={gpus} or fewer, or device=cpu"
    )


def free_gpus_before_ray(cfg: TrainingConfig, machine_gpus: int, preferences: bool) -> int:
    """GPUs a local cluster on this machine leaves for the Learners: all of them for the
    Learner in the driver; for Learner actors, all but the one the reward trainer's bundle
    reserves in a preference run."""
    if cfg.learner.rllib.num_learners == 0 or not preferences:
        return machine_gpus
    return max(0, machine_gpus - 1)
