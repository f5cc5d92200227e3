"""Environment section of the run config.

The paper's environment changes (Christiano et al. 2017, appendix A) are switches that
default OFF here, so that ``EnvConfig(id="InvertedPendulum-v5")`` behaves like the plain
gymnasium env; the paper presets turn them on:

- ``fixed_length_episodes`` (robotics: "we replaced these termination conditions by a
  penalty which encourages the parameters to remain in the range"; Atari: no life-loss
  or episode-end signal is sent to the agent, the env is still reset, "effectively
  converting the environment into a single continuous episode"),
- ``termination_penalty`` (the size of that penalty; the paper gives no number),
- ``remove_control_cost`` (A.1: the Gym tasks penalize large torques, which a human cannot
  see, so the paper removed that term),
- ``mask_score`` (Atari: blank the score area and other on-screen reward counters).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class EnvConfig(BaseModel):
    """Which environment to build, how many copies to step together, and the paper's changes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field("InvertedPendulum-v5", description="gymnasium environment id")
    num_envs: int = Field(1, ge=1, description="environments stepped together by one actor")

    # --- the paper's environment changes (Christiano et al. 2017, appendix A) ---------------
    fixed_length_episodes: bool = Field(
        False,
        description=(
            "appendix A: episodes last exactly `episode_steps` agent steps and never "
            "terminate early. MuJoCo: the termination condition becomes a per-step penalty "
            "on the true reward. Atari: game over and life loss are hidden (the game is "
            "reset transparently and play continues)"
        ),
    )
    termination_penalty: float = Field(
        0.0,
        ge=0.0,
        description=(
            "reward units subtracted from the true reward (appendix A) when "
            "fixed_length_episodes is on: per agent step in which a MuJoCo task's "
            "termination condition holds, and once per hidden Atari game over. The paper "
            "states no value; presets choose one (0 for Pong, as in A.2)"
        ),
    )
    height_reward: float = Field(
        0.0,
        ge=0.0,
        description=(
            "with fixed_length_episodes, add height_reward * (torso height - its height at "
            "reset) to every step's true reward: the termination penalty in graded form, as "
            "in rl-teacher, OpenAI's public implementation of the paper (its Hopper adds "
            "torso height - 1). Unlike the penalty it differs between any two clips in which "
            "the torso sits at different heights, fallen ones too. Hopper-v5 and Walker2d-v5 "
            "(their step info reports the height); 0 turns it off"
        ),
    )
    remove_control_cost: bool = Field(
        False,
        description=(
            "appendix A.1: drop the torque (control) cost from MuJoCo rewards, since a human "
            "cannot see torques; sets the env's ctrl_cost_weight / reward_control_weight to 0"
        ),
    )
    mask_score: bool = Field(
        False,
        description=(
            "Atari only: blank the score area and other on-screen reward counters in every "
            "observation and clip frame (per-game table in rlhp.envs.score_masks)"
        ),
    )
    make_kwargs: dict[str, bool | int | float | str] = Field(
        default_factory=dict,
        description=(
            "MuJoCo and other Python envs: extra keyword arguments for gymnasium.make, e.g. "
            "env.make_kwargs.healthy_reward=0.5 for Hopper-v5; remove_control_cost is applied "
            "after them (Atari games take the atari_* fields instead)"
        ),
    )
    episode_steps: int | None = Field(
        None,
        ge=1,
        description=(
            "episode length in agent steps (a time limit, reported as truncation); None: "
            "the registered max_episode_steps (MuJoCo), or max frames / frameskip (Atari)"
        ),
    )

    # --- Atari (ale_py.AtariVectorEnv, native C++ preprocessing) -----------------------------
    atari_frameskip: int = Field(4, ge=1, description="emulator frames per agent step")
    atari_frame_stack: int = Field(4, ge=1, description="84x84 grayscale frames per observation")
    atari_noop_max: int = Field(30, ge=0, description="max random no-op agent steps at reset")
    atari_repeat_action_probability: float | None = Field(
        None,
        ge=0.0,
        le=1.0,
        description="sticky-action probability; None: the registered env's value (v5: 0.25)",
    )
    atari_num_threads: int = Field(
        0, ge=0, description="emulator threads of the native vector env; 0: one per CPU core"
    )
    reward_clipping: bool = Field(
        False,
        description=(
            "clip the returned reward to {-1, 0, 1} (sign); infos['true_reward'] stays unclipped"
        ),
    )

    # --- segments and clips ------------------------------------------------------------------
    render_clips: bool = Field(
        False,
        description=(
            "record what it takes to show segments to a person (MuJoCo qpos/qvel per step, "
            "other envs' RGB frames); needs an env with the 'rgb_array' render mode"
        ),
    )
    segment_seconds: float = Field(
        1.5,
        gt=0.0,
        description=(
            "segment length in seconds of game time for non-Atari envs (appendix A.1: 1.5 s); "
            "Atari segments are 25 agent steps (appendix A.2) unless segment_steps is set"
        ),
    )
    segment_steps: int | None = Field(
        None,
        ge=1,
        description="segment length in agent steps; overrides segment_seconds and Atari's 25",
    )
    clip_width: int = Field(320, ge=16, le=4096, description="MuJoCo clip width in pixels")
    clip_height: int = Field(240, ge=16, le=4096, description="clip height in pixels")
    clip_fps: float = Field(
        30.0,
        gt=0.0,
        le=240.0,
        description=(
            "highest clip frame rate in frames per second; steps are subsampled by an "
            "integer stride so that clips play in real time"
        ),
    )

    clip_high_quality: bool = Field(
        False,
        description=(
            "MuJoCo clips with multisampling, shadows and reflections (about 7x slower "
            "without a GPU); off: plain shading, same scene and camera"
        ),
    )

    @field_validator("id")
    @classmethod
    def _non_empty_id(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("env.id must name a gymnasium environment, e.g. 'Hopper-v5'")
        return value

    @model_validator(mode="after")
    def _penalty_needs_fixed_length(self) -> EnvConfig:
        if self.termination_penalty and not self.fixed_length_episodes:
            raise ValueError(
                "env.termination_penalty only applies with env.fixed_length_episodes=true "
                "(appendix A: the penalty replaces termination); set both or neither"
            )
        if self.height_reward and not self.fixed_length_episodes:
            raise ValueError(
                "env.height_reward only applies with env.fixed_length_episodes=true (like "
                "env.termination_penalty, it stands in for termination); set both or neither"
            )
        return self
