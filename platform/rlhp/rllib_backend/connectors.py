"""The learned reward inside RLlib: a Learner connector that relabels every batch with r_hat.

Placed by ``process.build_algorithm`` at the head of the Learner pipeline, after RLlib's
``AddOneTsToEpisodesAndTruncate`` (which appends one bootstrap step to every episode chunk)
and before GAE, like RLlib's curiosity examples: the advantages and value targets PPO trains
on are computed from r_hat, never from the env's reward, which stays in the episodes only
as the true reward the driver reports (Christiano et al. 2017, section 2.2.1). The same
shaping as rlhp's learner follows: rewards divided by the running std of the discounted
return per episode stream, then clipped (``learner.normalize_reward``, ``reward_clip``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core import DEFAULT_MODULE_ID

from rlhp.algos.normalizers import RunningMeanStd
from rlhp.preference.config import RewardModelConfig
from rlhp.preference.networks import InputSpec
from rlhp.preference.reward_models import build_reward_model
from rlhp.preference.watch import overoptimization_watch
from rlhp.rllib_backend.segments import true_rewards

STATS = "rlhp_reward"  # the connector's key in the Learner's metrics


def stream_id(episode_id: str) -> str:
    """The episode's own id: ``AddOneTsToEpisodesAndTruncate`` appends ``_{index}``."""
    return episode_id.rsplit("_", 1)[0]


class ReturnScaler:
    """rlhp's ``RewardScaler`` for episode chunks: the discounted return is carried per
    episode id from one chunk to the next and dropped when the episode ends."""

    def __init__(self, gamma: float, clip: float, eps: float = 1e-8) -> None:
        self.gamma, self.clip, self.eps = gamma, clip, eps
        self.returns: dict[str, float] = {}
        self.rms = RunningMeanStd()

    def __call__(self, chunks: list[tuple[str, np.ndarray, bool]]) -> list[np.ndarray]:
        """``chunks``: (episode id, rewards [T], whether the episode ended) in time order."""
        discounted = []
        for key, rewards, done in chunks:
            ret, out = self.returns.pop(key, 0.0), np.empty(len(rewards))
            for t, r in enumerate(rewards):
                ret = ret * self.gamma + float(r)
                out[t] = ret
            if not done:
                self.returns[key] = ret
            discounted.append(out)
        if discounted:
            self.rms.update(np.concatenate(discounted))
        scale = 1.0 / np.sqrt(self.rms.var + self.eps)
        return [np.clip(r * scale, -self.clip, self.clip) for _, r, _ in chunks]


class LearnedReward(ConnectorV2):
    """Replace each episode chunk's rewards by r_hat (``set_reward_state`` loads a new
    reward model version; until the first one arrives the chunk gets a zero reward), then
    shape them. Without a reward model (``reward_model=None``, a true-reward run) only the
    shaping applies, as in rlhp's learner."""

    def __init__(
        self,
        input_observation_space: Any = None,
        input_action_space: Any = None,
        *,
        spec: InputSpec,
        reward_model: dict[str, Any] | None,
        gamma: float,
        normalize: bool,
        clip: float,
        watch: bool = False,
        segment_length: int = 1,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(input_observation_space, input_action_space, **kwargs)
        self.model = (
            build_reward_model(spec, RewardModelConfig.model_validate(reward_model))
            if reward_model is not None
            else None
        )  # None: the env's (true) reward, shaped the same way
        self.version = -1
        self.scaler = ReturnScaler(gamma, clip) if normalize else None
        self.last_mean = float("nan")
        self.watch, self.segment_length = watch, segment_length
        self.watch_rng = np.random.default_rng([seed, 7])
        self.predicted: dict[str, float] = {}  # episode id -> its anchored r_hat so far

    def set_reward_state(self, state: dict[str, Any]) -> int:
        assert self.model is not None, "a true-reward run has no reward model"
        self.model.load_state_dict(state)
        self.version = int(state["version"])
        return self.version

    def __call__(
        self,
        *,
        rl_module: Any,
        batch: dict[str, Any],
        episodes: list[Any],
        explore: bool | None = None,
        shared_data: dict | None = None,
        metrics: Any = None,
        **kwargs: Any,
    ) -> Any:
        chunks = list(self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False))
        if not chunks:
            return batch
        module = rl_module[DEFAULT_MODULE_ID]
        act_space = module.action_space
        obs, acts, true = [], [], []
        for ep in chunks:
            n = len(ep) - 1  # the last step is the bootstrap step AddOneTs appended
            obs.append(np.asarray(ep.get_observations(slice(0, n))))
            a = np.asarray(ep.get_actions(slice(0, n)))
            if isinstance(act_space, spaces.Box):  # the actions the env executed
                a = np.clip(a, act_space.low, act_space.high)
            acts.append(a)
            true.append(true_rewards(ep, n))
        lengths = [len(t) for t in true]
        r_hat = self._predict(np.concatenate(obs), np.concatenate(acts), np.concatenate(true))
        pieces = np.split(r_hat, np.cumsum(lengths)[:-1])
        self.last_mean = float(r_hat.mean()) if r_hat.size else float("nan")
        if self.scaler is not None:
            streams = [(stream_id(ep.id_), r, bool(ep.is_done))
                       for ep, r in zip(chunks, pieces, strict=True)]  # fmt: skip
            pieces = self.scaler(streams)
        for ep, r in zip(chunks, pieces, strict=True):
            full = np.zeros(len(ep), np.float32)  # the bootstrap step keeps reward 0
            full[: len(r)] = r
            ep.set_rewards(new_data=full)
        module.stage_observations(np.concatenate(obs))
        if metrics is not None and self.model is not None:
            for name, value in self._metrics(chunks, r_hat, lengths, np.concatenate(true)).items():
                metrics.log_value((STATS, name), value, window=1)
        return batch

    def _metrics(
        self, chunks: list[Any], r_hat: np.ndarray, lengths: list[int], true: np.ndarray
    ) -> dict[str, float]:
        """rlhp's learner metrics of r_hat: its mean per step, the predicted return of the
        episodes that ended (anchored at the random policy's mean reward, as rlhp's learner
        measures it) and, with synthetic labels, the over-optimization watch on the chunks
        (each chunk a column that ends where it ends, so no segment spans two)."""
        out = {"predicted_reward_mean": self.last_mean, "reward_version": float(self.version)}
        anchored = np.split(r_hat - getattr(self.model, "reference_mean", 0.0),
                            np.cumsum(lengths)[:-1])  # fmt: skip
        finished = []
        for ep, r in zip(chunks, anchored, strict=True):
            key = stream_id(ep.id_)
            total = self.predicted.pop(key, 0.0) + float(r.sum())
            if ep.is_done:
                finished.append(total)
            else:
                self.predicted[key] = total
        if finished:
            out["predicted_episode_return"] = float(np.mean(finished))
        if self.watch and self.version >= 0:
            ends = np.zeros((len(r_hat), 1), dtype=bool)
            ends[np.cumsum(lengths) - 1, 0] = True
            watched = overoptimization_watch(r_hat[:, None], true[:, None], ends,
                                             self.segment_length, self.watch_rng)  # fmt: skip
            out |= {name.replace("/", "."): value for name, value in watched.items()}
        return out

    def _predict(self, obs: np.ndarray, actions: np.ndarray, true: np.ndarray) -> np.ndarray:
        if self.model is None:
            return true.astype(np.float32)
        if getattr(self.model, "reads_true_reward", False):  # the oracle diagnostic
            return np.asarray(self.model.relabel(true[:, None]), np.float32)[:, 0]  # type: ignore[attr-defined]
        if self.version < 0:
            return np.zeros(len(true), np.float32)
        return np.asarray(self.model(obs[:, None], actions[:, None]), np.float32)[:, 0]
