"""Atari through ale-py's native C++ vector env, with the paper's changes on top.

``ale_py.AtariVectorEnv`` does the DQN preprocessing the paper used (appendix A.2: 0-30
no-ops, max-pooling over adjacent frames, 4-frame stack, frameskip 4) in C++ threads: about
1.5x less CPU per step than gymnasium's Python wrappers, spread over all cores
(``benchmarks/env_throughput.py``). This module adds the paper's changes (Christiano et al.
2017, appendix A intro and A.2):

- **Fixed-length episodes.** "We do not send life loss or episode end signals to the agent
  (we do continue to actually reset the environment), effectively converting the
  environment into a single continuous episode". Design: the native
  env runs without episodic life and resets games itself on game over (SAME_STEP); this
  class never reports ``terminated``, drops the ``lives`` info, and cuts the continuous
  stream into episodes of exactly ``episode_steps`` agent steps, reported as truncation.
  At such a cut the game is *not* reset: ``final_obs`` and the next episode's first
  observation are the same frame stack, so value bootstrapping sees one continuous process.
  A hidden game over subtracts ``termination_penalty`` from the true reward ("When
  providing synthetic oracle feedback we replace episode ends with a penalty in all games
  except Pong; the agent must learn this penalty").
- **Score masking** (``rlhp.envs.score_masks``) on observations and final observations.
- **True reward.** The native env never clips; ``infos["true_reward"]`` is the game score
  change (minus the game-over penalty), and ``rewards`` is its sign if ``reward_clipping``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ale_py import AtariVectorEnv
from gymnasium.vector import AutoresetMode, VectorEnv

from rlhp.envs.score_masks import apply_mask, scaled_regions, score_mask_for

ATARI_FPS = 60.0
"""Emulator frames per second of game time (NTSC)."""

FRAME_SIZE = 84


class AtariPaperVectorEnv(VectorEnv):
    """``ale_py.AtariVectorEnv`` (SAME_STEP) plus fixed-length episodes, masking, true reward.

    Observations: uint8 [N, stack, 84, 84]. ``infos`` always holds ``true_reward`` [N]
    float64, ``game_over`` [N] bool (a game really ended in this step, by game over or the
    emulator's frame limit; for evaluation and synthetic teachers only, never for the agent
    or the reward model) and ``game_return`` [N] (score of each game that ended, valid where
    ``game_over``).
    When an episode ends (``_final_obs``), ``final_obs`` [N, stack, 84, 84] holds its last
    observation and ``episode_return`` / ``episode_length`` its true return and length.
    """

    def __init__(
        self,
        *,
        game: str,
        env_id: str,
        num_envs: int,
        episode_steps: int,
        fixed_length: bool,
        termination_penalty: float,
        mask_score: bool,
        reward_clipping: bool,
        frameskip: int,
        frame_stack: int,
        noop_max: int,
        repeat_action_probability: float,
        full_action_space: bool,
        num_threads: int,
        max_num_frames_per_episode: int,
    ) -> None:
        self.game = game
        self.env_id = env_id
        self.fixed_length = fixed_length
        self.episode_steps = episode_steps
        self.termination_penalty = float(termination_penalty)
        self.reward_clipping = reward_clipping
        self.frameskip = frameskip
        self.dt = frameskip / ATARI_FPS
        self._regions = (
            scaled_regions(score_mask_for(game, env_id), FRAME_SIZE, FRAME_SIZE)
            if mask_score
            else []
        )
        # Without fixed-length episodes, episode_steps is an ordinary time limit that the
        # native env enforces; with them, the native env's own limit is hidden like a game
        # over and this class cuts episodes itself.
        native_limit = max_num_frames_per_episode if fixed_length else episode_steps * frameskip
        self.ale_env = AtariVectorEnv(
            game,
            num_envs,
            num_threads=num_threads,
            max_num_frames_per_episode=native_limit,
            repeat_action_probability=repeat_action_probability,
            full_action_space=full_action_space,
            autoreset_mode=AutoresetMode.SAME_STEP,
            img_height=FRAME_SIZE,
            img_width=FRAME_SIZE,
            grayscale=True,
            stack_num=frame_stack,
            frameskip=frameskip,
            maxpool=True,
            noop_max=noop_max,
            episodic_life=False,
            life_loss_info=False,
            reward_clipping=False,
        )
        self.num_envs = num_envs
        self.single_observation_space = self.ale_env.single_observation_space
        self.single_action_space = self.ale_env.single_action_space
        self.observation_space = self.ale_env.observation_space
        self.action_space = self.ale_env.action_space
        self.metadata = {
            "autoreset_mode": AutoresetMode.SAME_STEP,
            "render_modes": ["rgb_array"],
        }
        self.render_mode = None
        self._t = np.zeros(num_envs, dtype=np.int64)
        self._ret = np.zeros(num_envs, dtype=np.float64)
        self._game_ret = np.zeros(num_envs, dtype=np.float64)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every game; an int ``seed`` seeds env i with ``seed + i``."""
        obs, _ = self.ale_env.reset(seed=seed, options=options)
        self._t[:] = 0
        self._ret[:] = 0.0
        self._game_ret[:] = 0.0
        if self._regions:
            apply_mask(obs, self._regions)
        return obs, {}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """Step every game once (``frameskip`` emulator frames); see the class docstring."""
        obs, raw, term, trunc, native_info = self.ale_env.step(np.asarray(actions))
        raw = raw.astype(np.float64)
        game_over = term | trunc
        true_reward = raw
        self._game_ret += raw
        game_return = self._game_ret.copy()
        self._game_ret[game_over] = 0.0
        if self._regions:
            apply_mask(obs, self._regions)
        self._t += 1
        if self.fixed_length:
            if self.termination_penalty:
                true_reward = raw - self.termination_penalty * term
            terminations = np.zeros(self.num_envs, dtype=np.bool_)
            truncations = self._t >= self.episode_steps
            ended = truncations
            final_obs = obs.copy() if ended.any() else None
        else:
            terminations = term
            truncations = trunc
            ended = game_over
            final_obs = native_info.get("final_obs") if ended.any() else None
            if final_obs is not None and self._regions:
                apply_mask(final_obs, self._regions)
        self._ret += true_reward
        infos: dict[str, Any] = {
            "true_reward": true_reward,
            "game_over": game_over,
            "game_return": game_return,
        }
        if final_obs is not None:
            infos["final_obs"] = final_obs
            infos["_final_obs"] = ended
            infos["episode_return"] = np.where(ended, self._ret, 0.0)
            infos["episode_length"] = np.where(ended, self._t, 0)
            self._ret[ended] = 0.0
            self._t[ended] = 0
        if not self.fixed_length:
            infos["lives"] = native_info["lives"]
        rewards = np.sign(true_reward) if self.reward_clipping else true_reward
        return obs, rewards, terminations, truncations, infos

    def render_state(self, obs: np.ndarray, infos: dict[str, Any]) -> dict[str, np.ndarray]:
        """The newest (masked) agent frame of ``obs``, grey: ``frames`` [N, 84, 84] uint8
        (the clip renderer makes it RGB; one channel is a third of the bytes).

        Clips show the agent's own 84x84 frames, not the emulator's 210x160 colour screen:
        the native vector env exposes no per-env screen, the frames are already masked, and
        a person then judges exactly what the reward model sees.
        """
        del infos
        newest = obs[:, -1]
        return {"frames": np.ascontiguousarray(newest)}

    def close_extras(self, **kwargs: Any) -> None:
        """Stop the native emulator threads."""
        ale_env = getattr(self, "ale_env", None)  # absent if the constructor raised
        if ale_env is not None:
            ale_env.close()


class AtariNextStepVectorEnv(VectorEnv):
    """``AtariPaperVectorEnv`` in NEXT_STEP autoreset mode, what RLlib's EnvRunners expect:
    the step that ends an episode returns its last observation, and the next step of that
    row starts the next episode (reward 0, not done).

    The native vector env steps every game at once and cannot pause one, so that *reset
    step* advances the row's game by one no-op (action 0, NOOP in every minimal action
    set) and returns the frame after it as the next episode's first observation; the score
    change of that one agent step is not shown to the agent (one step in ``episode_steps``,
    of a game that ``noop_max`` already starts with random no-ops). With fixed-length
    episodes the game is not reset at a cut, as in SAME_STEP mode; without them the native
    env has reset it at game over, and the no-op is the new game's first step.

    ``infos`` per row: ``true_reward`` (0 on a reset step), ``frames`` (the newest masked
    agent frame, the segments' render state) and, where an episode ended, ``final_obs`` /
    ``episode_return`` / ``episode_length`` as in SAME_STEP mode.
    """

    NOOP = 0

    def __init__(self, inner: AtariPaperVectorEnv) -> None:
        self.inner = inner
        self.num_envs = inner.num_envs
        self.env_id, self.dt = inner.env_id, inner.dt
        self.single_observation_space = inner.single_observation_space
        self.single_action_space = inner.single_action_space
        self.observation_space, self.action_space = inner.observation_space, inner.action_space
        self.metadata = {**inner.metadata, "autoreset_mode": AutoresetMode.NEXT_STEP}
        self.render_mode = None
        self._needs_reset = np.zeros(self.num_envs, dtype=np.bool_)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        self._needs_reset[:] = False
        obs, infos = self.inner.reset(seed=seed, options=options)
        return obs, {**infos, "frames": np.ascontiguousarray(obs[:, -1])}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.array(actions, copy=True)
        resetting = self._needs_reset.copy()
        actions[resetting] = self.NOOP
        obs, rewards, terms, truncs, infos = self.inner.step(actions)
        ended = terms | truncs
        if "final_obs" in infos:  # an ended row shows its last observation, not the next one
            obs = np.where(ended[:, None, None, None], infos["final_obs"], obs)
        rewards = np.where(resetting, 0.0, rewards)
        true_reward = np.where(resetting, 0.0, infos["true_reward"])
        self._needs_reset = ended & ~resetting
        out = {k: v for k, v in infos.items() if k != "true_reward"}
        out |= {"true_reward": true_reward, "frames": np.ascontiguousarray(obs[:, -1])}
        return obs, rewards, terms & ~resetting, truncs & ~resetting, out

    def render_state(self, obs: np.ndarray, infos: dict[str, Any]) -> dict[str, np.ndarray]:
        return self.inner.render_state(obs, infos)

    def close_extras(self, **kwargs: Any) -> None:
        self.inner.close()
