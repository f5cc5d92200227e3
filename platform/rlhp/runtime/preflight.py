"""Before a new run starts: check what only an environment or the file system can tell, so
bad input is one line before Ray starts, and make the config's references absolute for
actors that run elsewhere (a judge's file, earlier runs' labels)."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym
import torch

from rlhp.config import RunConfig
from rlhp.data.run_labels import RunLabels, check_shapes, import_labels, resolve_run_dir
from rlhp.envs import make_vector_env
from rlhp.envs.factory import segment_length
from rlhp.errors import ConfigError
from rlhp.feedback_app.tokens import read_tokens
from rlhp.nn.policies import resolve_policy_kind
from rlhp.preference.judges import absolute_judge_ref, load_judge
from rlhp.preference.networks import InputSpec
from rlhp.rllib_backend.resources import free_gpus_before_ray, learner_gpus


def preflight(cfg: RunConfig) -> tuple[gym.Space, gym.Space, int]:
    """Check what only an environment can tell (its id, its spaces against the policy and
    algorithm settings) and return its single observation and action spaces and the
    segment length in agent steps."""
    if cfg.teacher.kind == "human" and cfg.feedback.tokens_file is not None:
        read_tokens(cfg.feedback.tokens_file)  # a bad tokens file is one line, before any run
    if cfg.teacher.kind == "judge" and cfg.runtime.reward == "preferences":
        load_judge(cfg.teacher.judge or "")  # a judge that does not load is one line, too
    env = make_vector_env(cfg.env.model_copy(update={"num_envs": 1}), cfg.seed)
    obs_space, act_space = env.single_observation_space, env.single_action_space
    seg_length = segment_length(cfg.env, env.dt)
    env.close()
    kind = resolve_policy_kind(cfg.policy, obs_space, act_space, cfg.env.id)
    if cfg.learner.algo == "trpo" and kind == "cnn_categorical" and cfg.policy.cnn_shared_trunk:
        raise ConfigError(
            "policy.cnn_shared_trunk: TRPO steps policy and value separately; "
            "set policy.cnn_shared_trunk=false"
        )
    if cfg.learner.backend == "rllib":  # NEXT_STEP autoreset, MuJoCo and classic control
        make_vector_env(
            cfg.env.model_copy(update={"num_envs": 1}), cfg.seed, next_step=True
        ).close()
        if not (cfg.runtime.ray_address or os.environ.get("RAY_ADDRESS")):
            preferences = cfg.runtime.reward == "preferences"
            learner_gpus(cfg, free_gpus_before_ray(cfg, torch.cuda.device_count(), preferences))
    if cfg.runtime.reward == "preferences":
        spec = InputSpec.from_spaces(obs_space, act_space)
        for field, refs in _label_sources(cfg).items():
            for run_dir in refs:
                source = RunLabels.open(run_dir)
                check_shapes(source, spec.obs_shape, spec.action_shape, field)
                if field == "reward_model.pretrain_from" and source.spec.length != seg_length:
                    raise ConfigError(
                        f"{field}: {run_dir} has {source.spec.length}-step segments, this run "
                        f"{seg_length}; set env.segment_steps to match or pick another run"
                    )
    return obs_space, act_space, seg_length


def _label_sources(cfg: RunConfig) -> dict[str, tuple[str, ...]]:
    return {
        "reward_model.pretrain_from": cfg.reward_model.pretrain_from,
        "label_schedule.reuse_from": cfg.label_schedule.reuse_from,
    }


def resolve_paths(cfg: RunConfig) -> RunConfig:
    """``cfg`` with the judge's file and the label-source runs as absolute paths (a run id is
    looked up under ``runtime.runs_dir``); a source that is not a run is a ConfigError."""
    teacher, rm, schedule = cfg.teacher, cfg.reward_model, cfg.label_schedule
    if teacher.judge is not None:
        teacher = teacher.model_copy(update={"judge": absolute_judge_ref(teacher.judge)})
    runs_dir = cfg.runtime.runs_dir

    def runs(field: str, refs: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(resolve_run_dir(r, runs_dir, field)) for r in refs)

    rm = rm.model_copy(
        update={"pretrain_from": runs("reward_model.pretrain_from", rm.pretrain_from)}
    )
    schedule = schedule.model_copy(
        update={"reuse_from": runs("label_schedule.reuse_from", schedule.reuse_from)}
    )
    return cfg.model_copy(
        update={"teacher": teacher, "reward_model": rm, "label_schedule": schedule}
    )


def reuse_labels(cfg: RunConfig, run_dir: Path) -> int:
    """A new run with ``label_schedule.reuse_from`` starts with those runs' labels and the
    segments they name, in its own stores; returns how many labels it took over."""
    if not cfg.label_schedule.reuse_from or cfg.runtime.reward != "preferences":
        return 0
    return import_labels([RunLabels.open(d) for d in cfg.label_schedule.reuse_from], run_dir)
