"""``RunConfig``: the one typed configuration of an rlhp run, and how it is loaded.

Every field has a default, a unit and a validation rule. Presets are YAML files in
``rlhp/presets``; the CLI only overrides fields (``--set learner.ppo.learning_rate=1e-4``).
Invalid input becomes a one-line :class:`~rlhp.errors.ConfigError` naming the field.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rlhp.algos.config import TrainingConfig
from rlhp.errors import ConfigError
from rlhp.feedback_app.config import FeedbackConfig, is_loopback
from rlhp.preference.config import (
    LabelScheduleConfig,
    QueryConfig,
    RewardModelConfig,
    TeacherConfig,
)
from rlhp.tracking.config import TrackingConfig


def _migrate_feedback_mode(data: dict[str, Any]) -> dict[str, Any]:
    """Configs written before ``teacher.kind=human`` said ``feedback.mode: human|synthetic``
    (a run directory's config.yaml, read again by ``--resume``): read them the new way."""
    feedback = data.get("feedback")
    if not isinstance(feedback, dict) or "mode" not in feedback:
        return data
    feedback = dict(feedback)
    mode = feedback.pop("mode")
    data = {**data, "feedback": feedback}
    if mode == "human":
        teacher = data.get("teacher") or {}
        if isinstance(teacher, dict) and teacher.get("kind", "human") != "human":
            raise ConfigError(
                f"feedback.mode: 'human' contradicts teacher.kind={teacher['kind']!r}; "
                "feedback.mode is gone: set only teacher.kind=human"
            )
        data["teacher"] = {**teacher, "kind": "human"} if isinstance(teacher, dict) else teacher
    elif mode != "synthetic":
        raise ConfigError(
            f"feedback.mode: {mode!r} is not a mode; feedback.mode is gone: "
            "people label with teacher.kind=human"
        )
    return data


class RuntimeConfig(BaseModel):
    """Actors, placement, checkpoints. Defaults fit a 2-core laptop."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reward: Literal["preferences", "true_reward"] = Field(
        "preferences",
        description="preferences: learn r_hat from labels (the paper); true_reward: the env's "
        "reward, the paper's RL baseline, on the same runtime",
    )
    ray_address: str | None = Field(
        None, description="Ray cluster to join (None: RAY_ADDRESS, else start a local one)"
    )
    num_rollout_workers: int = Field(1, ge=1, description="rollout actors (each one vector env)")
    rollout_worker_cpus: float = Field(1.0, gt=0.0, description="CPUs reserved per rollout actor")
    segment_buffer_capacity: int = Field(
        5000, ge=2, description="recent segments kept in the ring (count)"
    )
    reward_fit_interval_s: float = Field(
        2.0, ge=0.0, description="pause between reward-model fits when no new label arrived (s)"
    )
    checkpoint_every: int = Field(10, ge=1, description="learner iterations between checkpoints")
    runs_dir: str = Field("rlhp_runs", description="where run directories go")
    max_actor_restarts: int = Field(
        3, ge=0, description="times Ray restarts a failed actor before the run fails"
    )
    eval_episodes: int = Field(10, ge=0, description="evaluation episodes at the end (0 = none)")
    # Not in the paper (which samples and updates in turn): the workers collect the next
    # rollout with the current policy while the learner updates on the last one. The batch
    # is then one policy version old; PPO's and TRPO's importance ratio against the
    # behaviour log-probabilities (recorded by the workers) corrects for it.
    overlap_sampling: bool = Field(
        False,
        description="sample the next rollout during the learner's update (policy lag of one "
        "iteration); off: sample and update in turn",
    )
    # Not in the paper either (whose processes run asynchronously, section 2.1): the driver
    # waits for each labelling round and reward-model fit before the next policy update, so
    # which reward model an update reads never depends on the machine's speed. "pipelined":
    # the round and the fit run during the learner's update instead, and the update after
    # it reads their model (one version behind, as in the asynchronous loop); the next
    # rollout waits for both, so the run is still a function of its seed.
    lockstep: Literal[False, True, "pipelined"] = Field(
        False,
        description="true: wait for each labelling round and reward-model fit before the next "
        "update; pipelined: run them during the update, the next update reads their model; "
        "either way the run is a function of its seed (one rollout worker)",
    )

    @model_validator(mode="after")
    def _pipelined_lockstep_owns_the_update(self) -> RuntimeConfig:
        if self.lockstep == "pipelined" and self.overlap_sampling:
            raise ValueError(
                "runtime.lockstep: pipelined runs the labelling round and the reward-model fit "
                "while the learner updates, and runtime.overlap_sampling samples then (the "
                "round would race the new segments); set runtime.overlap_sampling=false or "
                "runtime.lockstep=true"
            )
        return self


class RunConfig(TrainingConfig):
    """Everything that defines a run. Sections mirror the package layout; the first ones
    (seed, total_steps, device, torch_threads, env, policy, learner) are the
    ``TrainingConfig`` that policy optimization reads."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reward_model: RewardModelConfig = RewardModelConfig()
    query: QueryConfig = QueryConfig()
    teacher: TeacherConfig = TeacherConfig()
    label_schedule: LabelScheduleConfig = LabelScheduleConfig()
    feedback: FeedbackConfig = FeedbackConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)  # reads the env

    @model_validator(mode="before")
    @classmethod
    def _labels_span_the_run(cls, data: Any) -> Any:
        """Unless set, the label schedule spreads its budget over this run's total_steps."""
        if isinstance(data, dict):
            schedule = data.get("label_schedule") or {}
            if isinstance(schedule, dict) and "total_timesteps" not in schedule:
                total = data.get("total_steps", cls.model_fields["total_steps"].default)
                data = {**data, "label_schedule": {**schedule, "total_timesteps": total}}
            data = _migrate_feedback_mode(data)
            teacher, env = data.get("teacher") or {}, data.get("env") or {}
            human = isinstance(teacher, dict) and teacher.get("kind") == "human"
            if human and isinstance(env, dict) and "render_clips" not in env:
                data = {**data, "env": {**env, "render_clips": True}}  # people watch clips
        return data

    @model_validator(mode="after")
    def _human_labels_need_clips(self) -> RunConfig:
        if self.teacher.kind == "human":
            if self.runtime.reward != "preferences":
                raise ValueError(
                    "runtime.reward: teacher.kind=human labels preferences; "
                    "set runtime.reward=preferences"
                )
            if not self.env.render_clips:
                raise ValueError(
                    "env.render_clips: teacher.kind=human shows clips to people; "
                    "set env.render_clips=true"
                )
            fb = self.feedback
            if not is_loopback(fb.host) and fb.tokens_file is None:
                raise ValueError(
                    f"feedback.host: binding the labelling app to {fb.host!r} (not loopback) "
                    "needs feedback.tokens_file with the labellers' tokens (lines `name:token`)"
                )
        return self

    @model_validator(mode="after")
    def _rllib_backend_settings(self) -> RunConfig:
        """What ``learner.backend=rllib`` does not run (yet): one line naming the fix."""
        if self.learner.backend != "rllib":
            return self
        lc, rt = self.learner, self.runtime
        unsupported = {
            "learner.algo": (lc.algo == "trpo", "the rllib backend runs PPO and APPO; for "
                             "TRPO set learner.backend=rlhp"),
            "learner.kl_to_initial_coef": (lc.kl_to_initial_coef > 0, "the KL penalty toward "
                                           "the initial policy runs on learner.backend=rlhp; "
                                           "set it to 0 or learner.backend=rlhp"),
            "runtime.overlap_sampling": (rt.overlap_sampling, "RLlib schedules its own "
                                         "sampling; set runtime.overlap_sampling=false"),
            "learner.ppo.target_kl": (lc.ppo.target_kl is not None, "RLlib's PPO has no "
                                      "early stop on KL; unset it or use learner.backend=rlhp"),
            "runtime.num_rollout_workers": (rt.num_rollout_workers < 1, "the rllib backend "
                                            "samples on at least one EnvRunner; set it >= 1"),
            "runtime.lockstep": (rt.lockstep == "pipelined", "RLlib samples inside its "
                                 "training step, where a pipelined round and fit would run; "
                                 "set runtime.lockstep=true or false"),
        }  # fmt: skip
        for field, (bad, fix) in unsupported.items():
            if bad:
                raise ValueError(f"{field}: {fix}")
        return self


def _format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(x) for x in e["loc"]) or "config"
        if e["type"] == "extra_forbidden":
            parts.append(f"{field}: unknown setting; check the spelling (see `rlhp config`)")
        elif isinstance(e.get("input"), dict):  # a rule across fields: its message says it all
            msg = e["msg"].removeprefix("Value error, ")
            names_its_field = re.match(r"[a-z_]+(\.[a-z_0-9]+)+: ", msg) is not None
            own = field == "config" or msg.startswith(f"{field}.")  # e.g. learner: learner.algo
            parts.append(msg if names_its_field and own else f"{field}: {msg}")
        elif e["type"] == "model_type" and e["loc"]:  # a group of settings given one value
            got = e.get("input")
            fix = f"env.id={got}" if field == "env" else f"{field}.FIELD=VALUE"
            parts.append(
                f"{field}: is a group of settings, not one value (got {got!r}); set its "
                f"fields one by one, e.g. {fix} (`rlhp config` lists them)"
            )
        else:
            parts.append(f"{field}: {e['msg']} (got {e.get('input')!r})")
    return "; ".join(parts)


def validate_config(data: dict[str, Any]) -> RunConfig:
    """Build a RunConfig from plain data, or raise ConfigError naming each bad field."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err)) from None


def preset_names() -> list[str]:
    return sorted(
        p.name[:-5] for p in resources.files("rlhp.presets").iterdir() if p.name.endswith(".yaml")
    )


def _read_preset(preset: str, chain: tuple[str, ...] = ()) -> dict[str, Any]:
    """A preset's fields, with ``extends: PARENT`` resolved: the parent preset (a name, or a
    YAML path relative to the child file) is read first and the child's fields are merged
    over it, mapping by mapping, so a variant preset states only what it changes."""
    path = Path(preset)
    is_file = path.suffix in (".yaml", ".yml") and path.exists()
    if is_file:
        text = path.read_text()
    else:
        if preset not in preset_names():
            raise ConfigError(
                f"preset: unknown preset {preset!r}; choose one of {', '.join(preset_names())} "
                "or give a path to a YAML file"
            )
        text = resources.files("rlhp.presets").joinpath(f"{preset}.yaml").read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"preset: {preset!r} must hold a YAML mapping of config fields")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent:
        raise ConfigError(f"extends: in preset {preset!r} must name one preset or YAML file")
    if is_file and Path(parent).suffix in (".yaml", ".yml"):
        parent = str(path.parent / parent)
    here = (*chain, _preset_key(preset))
    if _preset_key(parent) in here:
        cycle = " -> ".join((*chain, preset, parent))
        raise ConfigError(f"extends: presets extend each other in a cycle ({cycle}); break it")
    return _merge(_read_preset(parent, here), data)


def _preset_key(preset: str) -> str:
    """One name per preset for cycle detection: a YAML file's resolved path, else the name."""
    path = Path(preset)
    return str(path.resolve()) if path.suffix in (".yaml", ".yml") and path.exists() else preset


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: nested mappings merge, every other value replaces."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if both else value
    return out


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply ``a.b.c=value`` in place; the value is parsed as YAML (numbers, lists, ...)."""
    key, sep, raw = override.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {override!r}: expected key=value, e.g. learner.algo=trpo")
    *parents, leaf = key.strip().split(".")
    node = data
    for p in parents:
        child = node.setdefault(p, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {key}: {p} is a value, not a section")
        node = child
    node[leaf] = yaml.safe_load(raw) if raw.strip() else raw


def load_config(
    preset: str | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> RunConfig:
    """Preset (a name in ``rlhp/presets`` or a YAML path; default ``default``) plus overrides."""
    data = _read_preset(preset or "default")
    for o in overrides:
        apply_override(data, o)
    return validate_config(data)


def config_to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
