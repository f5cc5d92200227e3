"""The reward predictor ensemble r_hat (Christiano et al. 2017 section 2.2.3, appendix A).

K members r_hat_k(o, a), each trained on its own bootstrap resample of the training labels
("|D| triples sampled from D with replacement") with the Bradley-Terry cross-entropy of
``rlhp.preference.losses``. A fraction 1/e of the labels is held out for validation, and
each member's L2 coefficient λ_k is adapted so that its validation loss stays between 1.1
and 1.5 times its training loss. The prediction used as reward is

    r_hat(o, a) = σ_out · (z(o, a) - mean z) / std z,   z = (1/K) Σ_k (r_hat_k - m_k) / s_k,

"independently normalizing each of these predictors and then averaging the results"
(2.2.3), then normalizing to zero mean and a constant standard deviation σ_out (2.2.1;
σ_out = 1 in A.1, 0.05 in A.2). The statistics m_k, s_k, mean z, std z are fitted on
recent steps (``fit_normalization``). Each change of the weights or of the statistics
increments ``version``, which consumers compare to pull the newest weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rlhp.checkpoints import RewardModelCheckpoint
from rlhp.data.errors import SchemaMismatchError
from rlhp.errors import ConfigError
from rlhp.preference.config import RewardModelConfig
from rlhp.preference.dataset import PreferenceData
from rlhp.preference.losses import bradley_terry_loss, preference_probability
from rlhp.preference.metrics import expected_calibration_error, pairwise_accuracy, pearson
from rlhp.preference.networks import InputSpec, RewardMLP, build_reward_net

_EVAL_CHUNK_STEPS = 16_384  # steps per forward pass when no gradient is needed


@dataclass
class MemberEpoch:
    """One member after one epoch: losses without the L2 term, their ratio, λ used next."""

    train_loss: float
    val_loss: float
    ratio: float
    l2: float


@dataclass
class FitReport:
    """What one ``fit`` did. Validation metrics are NaN when no label is held out."""

    version: int
    n_train: int
    n_val: int
    history: list[list[MemberEpoch]] = field(default_factory=list)  # [epoch][member]
    val_accuracy: float = float("nan")
    val_ece: float = float("nan")
    val_return_correlation: float = float("nan")
    norm_member_std: float = float("nan")  # mean s_k of the output normalization
    norm_z_std: float = float("nan")  # std of the averaged standardized members

    @property
    def last(self) -> list[MemberEpoch]:
        """The members after the last epoch."""
        return self.history[-1] if self.history else []

    def metrics(self) -> dict[str, float]:
        """Flat numbers for tracking (means over members after the last epoch)."""
        last = self.last
        mean = (lambda xs: float(np.mean(xs))) if last else (lambda xs: float("nan"))
        return {
            "reward_model/version": float(self.version),
            "reward_model/n_train": float(self.n_train),
            "reward_model/n_val": float(self.n_val),
            "reward_model/train_loss": mean([m.train_loss for m in last]),
            "reward_model/val_loss": mean([m.val_loss for m in last]),
            "reward_model/loss_ratio": mean([m.ratio for m in last]),
            "reward_model/l2": mean([m.l2 for m in last]),
            "reward_model/val_accuracy": self.val_accuracy,
            "reward_model/val_ece": self.val_ece,
            "reward_model/val_return_correlation": self.val_return_correlation,
            "reward_model/norm_member_std": self.norm_member_std,
            "reward_model/norm_z_std": self.norm_z_std,
        }


def _as_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """A tensor over ``x`` without a copy when possible (read-only Arrow views are copied)."""
    if isinstance(x, torch.Tensor):
        return x
    x = np.ascontiguousarray(x)
    return torch.from_numpy(x if x.flags.writeable else x.copy())


class RewardEnsemble:
    """K reward predictors with bootstrap, adaptive L2 and normalized ensemble output.

    Args:
        spec: observation and action shapes (``InputSpec.from_spaces(obs_space, act_space)``).
        cfg: the ``reward_model`` config section.
    """

    def __init__(self, spec: InputSpec, cfg: RewardModelConfig | None = None) -> None:
        self.cfg = cfg = cfg if cfg is not None else RewardModelConfig()
        self.spec = spec
        self.device = torch.device(cfg.device)
        members = []
        with torch.random.fork_rng(devices=[]):
            for k in range(cfg.ensemble_size):
                torch.manual_seed(cfg.seed * 1_000 + k)
                members.append(build_reward_net(spec, cfg))
        self.members = nn.ModuleList(members).to(self.device)
        self._optimizers: list[torch.optim.Optimizer] | None = None  # made on first use
        self._optimizer_states: list[dict[str, Any]] | None = None  # loaded before that
        self.l2 = [cfg.l2_init] * cfg.ensemble_size  # λ_k
        # Normalization statistics (identity until fit_normalization).
        self.member_mean = torch.zeros(cfg.ensemble_size)  # m_k
        self.member_std = torch.ones(cfg.ensemble_size)  # s_k
        self.z_mean = 0.0
        self.z_std = 1.0
        # mean r_hat per step on reference steps (the initial random-policy segments), so
        # that predicted returns can be read against a fixed anchor across refits
        self.reference_mean = 0.0
        self.version = 0
        self.fits = 0
        self.obs_statistics_set = False

    @property
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Each member's Adam, made on first use (with the state ``load_state_dict`` got).

        Building a torch optimizer imports ``torch._dynamo``, seconds of CPU, which a
        process that only predicts (the labelling actor, the end-of-run report) never
        needs."""
        if self._optimizers is None:
            lr = self.cfg.learning_rate
            self._optimizers = [torch.optim.Adam(m.parameters(), lr=lr) for m in self.members]
            if self._optimizer_states is not None:
                for o, sd in zip(self._optimizers, self._optimizer_states, strict=True):
                    o.load_state_dict(sd)
                self._optimizer_states = None
        return self._optimizers

    @optimizers.setter
    def optimizers(self, optimizers: Sequence[torch.optim.Optimizer]) -> None:
        self._optimizers, self._optimizer_states = list(optimizers), None

    # -- forward passes ----------------------------------------------------------------

    def _member_steps(self, k: int, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Raw r_hat_k over steps [M, *obs_shape] -> [M] (mode and grad set by the caller)."""
        return self.members[k](obs.to(self.device), actions.to(self.device))

    def _member_returns(self, k: int, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """R_k = Σ_t r_hat_k over segments [N, L, ...] -> [N] (eq. 1's sums)."""
        N, L = obs.shape[:2]
        r = self._member_steps(
            k, obs.reshape(N * L, *obs.shape[2:]), actions.reshape(N * L, *actions.shape[2:])
        )
        return r.reshape(N, L).sum(dim=1)

    @torch.no_grad()
    def member_rewards(
        self, obs: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor
    ) -> torch.Tensor:
        """Raw per-step rewards of every member, [K, *lead] for inputs [*lead, *obs_shape]."""
        obs, actions = _as_tensor(obs), _as_tensor(actions)
        lead = obs.shape[: obs.dim() - len(self.spec.obs_shape)]
        M = int(np.prod(lead)) if lead else 1
        obs = obs.reshape(M, *self.spec.obs_shape)
        actions = actions.reshape(M, *self.spec.action_shape)
        self.members.eval()
        out = torch.empty(len(self.members), M)
        for start in range(0, M, _EVAL_CHUNK_STEPS):
            sl = slice(start, start + _EVAL_CHUNK_STEPS)
            for k in range(len(self.members)):
                out[k, sl] = self._member_steps(k, obs[sl], actions[sl]).float().cpu()
        return out.reshape(len(self.members), *lead)

    def predict(
        self, obs: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor
    ) -> np.ndarray:
        """Normalized ensemble reward r_hat for inputs [*lead, *obs_shape] -> [*lead] float32.

        Matches the learner's ``RewardFn``: ``predict(obs[T, N, ...], actions[T, N, ...])``.
        """
        r_k = self.member_rewards(obs, actions)
        if self.cfg.output_normalization == "none":
            return r_k.mean(0).numpy().astype(np.float32)
        shape = (-1,) + (1,) * (r_k.dim() - 1)
        z = ((r_k - self.member_mean.reshape(shape)) / self.member_std.reshape(shape)).mean(0)
        r_hat = self.cfg.reward_std * (z - self.z_mean) / self.z_std
        return r_hat.numpy().astype(np.float32)

    __call__ = predict

    def segment_returns(
        self, obs: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor
    ) -> np.ndarray:
        """Σ_t r_hat over segments [N, L, ...] -> [N] (the normalized reward's returns)."""
        return self.predict(obs, actions).reshape(obs.shape[0], -1).sum(axis=1)

    @torch.no_grad()
    def member_probabilities(
        self,
        obs_1: np.ndarray | torch.Tensor,
        act_1: np.ndarray | torch.Tensor,
        obs_2: np.ndarray | torch.Tensor,
        act_2: np.ndarray | torch.Tensor,
    ) -> torch.Tensor:
        """P_hat_k[σ1 ≻ σ2] for every member and pair, [K, N] (eq. 1 with ε, 2.2.3)."""
        R_1 = self.member_rewards(obs_1, act_1).sum(dim=-1)  # [K, N]
        R_2 = self.member_rewards(obs_2, act_2).sum(dim=-1)
        return preference_probability(R_1, R_2, self.cfg.random_response_prob)

    # -- normalization -----------------------------------------------------------------

    @torch.no_grad()
    def fit_normalization(
        self, obs: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor
    ) -> None:
        """Fit m_k, s_k and the ensemble's mean and std on recent steps [M, *obs_shape].

        Uses the last ``cfg.normalization_steps`` steps given.
        """
        obs, actions = _as_tensor(obs), _as_tensor(actions)
        obs = obs.reshape(-1, *self.spec.obs_shape)[-self.cfg.normalization_steps :]
        actions = actions.reshape(-1, *self.spec.action_shape)[-self.cfg.normalization_steps :]
        if obs.shape[0] < 2:
            raise ConfigError("fit_normalization: need at least 2 steps to fit a std")
        r_k = self.member_rewards(obs, actions)  # [K, M]
        self.member_mean = r_k.mean(dim=1)
        self.member_std = r_k.std(dim=1).clamp_min(1e-8)
        z = ((r_k - self.member_mean[:, None]) / self.member_std[:, None]).mean(0)
        self.z_mean = float(z.mean())
        self.z_std = max(float(z.std()), 1e-8)
        self.version += 1

    def set_reference(
        self, obs: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor
    ) -> None:
        """Anchor for predicted returns: the mean r_hat per step on reference steps
        [M, *obs_shape] (the initial random-policy segments). Does not change ``version``:
        the reward itself is unchanged."""
        self.reference_mean = float(np.mean(self.predict(obs, actions)))

    # -- training ----------------------------------------------------------------------

    def _l2_penalty(self, k: int) -> torch.Tensor:
        """Σ ||W||² over the weight matrices and kernels of member k (biases excluded)."""
        return sum(p.pow(2).sum() for p in self.members[k].parameters() if p.dim() > 1)

    def _step(self, data: PreferenceData, member_index: Sequence[np.ndarray]) -> list[float]:
        losses = []
        self.members.train()
        for k, index in enumerate(member_index):
            i = torch.as_tensor(index, dtype=torch.long)
            R_1 = self._member_returns(k, data.obs_1[i], data.act_1[i])
            R_2 = self._member_returns(k, data.obs_2[i], data.act_2[i])
            mu = data.mu[i].to(self.device)
            loss = bradley_terry_loss(R_1, R_2, mu, self.cfg.random_response_prob)
            objective = loss + self.l2[k] * self._l2_penalty(k)
            self.optimizers[k].zero_grad(set_to_none=True)
            objective.backward()
            self.optimizers[k].step()
            losses.append(float(loss.detach()))
        return losses

    def train_step(self, data: PreferenceData, member_index: Sequence[np.ndarray]) -> list[float]:
        """One Adam step per member k on the pairs ``member_index[k]``; returns each loss.

        The low-level step for a trainer that draws its own minibatches; ``fit`` is the usual
        entry point. Increments ``version``.
        """
        if len(member_index) != len(self.members):
            raise ConfigError(
                f"train_step: got {len(member_index)} index arrays for "
                f"{len(self.members)} members; pass one per member"
            )
        losses = self._step(data, member_index)
        self.version += 1
        return losses

    @torch.no_grad()
    def _loss(self, k: int, data: PreferenceData, index: np.ndarray) -> float:
        """Member k's mean cross-entropy on pairs ``index`` (no L2 term, eval mode)."""
        if len(index) == 0:
            return float("nan")
        self.members.eval()
        L = data.obs_1.shape[1]
        chunk = max(1, _EVAL_CHUNK_STEPS // L)
        total = 0.0
        for start in range(0, len(index), chunk):
            i = torch.as_tensor(index[start : start + chunk], dtype=torch.long)
            R_1 = self._member_returns(k, data.obs_1[i], data.act_1[i])
            R_2 = self._member_returns(k, data.obs_2[i], data.act_2[i])
            mu = data.mu[i].to(self.device)
            total += float(bradley_terry_loss(R_1, R_2, mu, self.cfg.random_response_prob)) * len(i)
        return total / len(index)

    def _set_obs_statistics(self, obs: torch.Tensor) -> None:
        """Freeze the MLP members' input standardization on ``obs`` (no-op for the CNN)."""
        for member in self.members:
            if isinstance(member, RewardMLP):
                member.set_obs_statistics(obs.to(self.device))
        self.obs_statistics_set = True

    def bootstrap_indices(self, train_index: np.ndarray) -> list[np.ndarray]:
        """Each member's resample: |D_train| draws with replacement (2.2.3), seeded by
        (seed, member, number of fits so far). Without ``cfg.bootstrap``: all of D_train."""
        out = []
        for k in range(len(self.members)):
            if not self.cfg.bootstrap:
                out.append(np.asarray(train_index))
                continue
            rng = np.random.default_rng([self.cfg.seed, k, self.fits])
            out.append(rng.choice(train_index, size=len(train_index), replace=True))
        return out

    def _adapt_l2(self, k: int, ratio: float) -> None:
        """λ_k up when val/train > band high (overfitting), down when < band low (2.2.3)."""
        lo, hi = self.cfg.l2_band
        f = self.cfg.l2_adapt_factor
        if ratio > hi:
            self.l2[k] = min(self.l2[k] * f, self.cfg.l2_max)
        elif ratio < lo:
            self.l2[k] = max(self.l2[k] / f, self.cfg.l2_min)

    def fit(
        self,
        data: PreferenceData,
        epochs: int | None = None,
        recent: tuple[np.ndarray | torch.Tensor, np.ndarray | torch.Tensor] | None = None,
        on_epoch: Callable[[int, int], None] | None = None,
    ) -> FitReport:
        """Train every member on its bootstrap sample for ``epochs`` (cfg.epochs_per_fit).

        After each epoch each member's validation / training loss ratio steers its λ_k,
        and ``on_epoch(epochs done, epochs)`` is told (a long pre-training's progress).
        Then the output normalization is refitted on ``recent`` = (obs, actions) steps, or,
        when None, on the steps of the labelled segments. Increments ``version`` once.
        """
        if len(data) == 0:
            raise ConfigError("fit: no labelled pairs with a preference to train on")
        epochs = self.cfg.epochs_per_fit if epochs is None else epochs
        train_index, val_index = data.split(self.cfg.validation_fraction, self.cfg.seed)
        if len(train_index) == 0:
            train_index, val_index = np.arange(len(data)), np.array([], dtype=np.int64)
        if self.cfg.normalize_obs and self.cfg.network == "mlp" and not self.obs_statistics_set:
            self._set_obs_statistics(self._labelled_steps(data)[0])
        boot = self.bootstrap_indices(train_index)
        rngs = [np.random.default_rng([self.cfg.seed, k, self.fits, 1]) for k in range(len(boot))]
        report = FitReport(version=self.version, n_train=len(train_index), n_val=len(val_index))
        B = self.cfg.batch_size
        with torch.random.fork_rng(devices=[]):  # dropout masks: seeded, global RNG untouched
            torch.manual_seed(self.cfg.seed * 1_000_003 + self.fits)
            for done in range(1, epochs + 1):
                order = [rng.permutation(b) for rng, b in zip(rngs, boot, strict=True)]
                for start in range(0, len(train_index), B):
                    self._step(data, [o[start : start + B] for o in order])
                epoch = []
                for k in range(len(self.members)):
                    train_loss = self._loss(k, data, boot[k])
                    val_loss = self._loss(k, data, val_index)
                    ratio = val_loss / max(train_loss, 1e-12)
                    if len(val_index) and self.cfg.l2_adapt:
                        self._adapt_l2(k, ratio)
                    epoch.append(MemberEpoch(train_loss, val_loss, ratio, self.l2[k]))
                report.history.append(epoch)
                if on_epoch is not None:
                    on_epoch(done, epochs)
        self.fits += 1
        if self.cfg.output_normalization == "labelled":
            self.fit_normalization(*self._labelled_steps(data, spread=True))
        elif recent is not None:
            self.fit_normalization(*recent)
        else:
            self.fit_normalization(*self._labelled_steps(data))
        report.norm_member_std = float(self.member_std.mean())
        report.norm_z_std = self.z_std
        report.version = self.version  # fit_normalization incremented it
        if len(val_index):
            metrics = self.evaluate(data.subset(val_index))
            report.val_accuracy = metrics["accuracy"]
            report.val_ece = metrics["ece"]
            report.val_return_correlation = metrics["return_correlation"]
        return report

    def _labelled_steps(
        self, data: PreferenceData, spread: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(obs, actions) steps of about ``cfg.normalization_steps`` labelled segments (both
        sides of each pair): the most recent pairs, or with ``spread`` pairs evenly spaced
        over all of them (the whole training distribution)."""
        L = data.obs_1.shape[1]
        n = min(len(data), max(1, math.ceil(self.cfg.normalization_steps / (2 * L))))
        index = (
            torch.linspace(0, len(data) - 1, n).round().long()
            if spread
            else torch.arange(len(data) - n, len(data))
        )
        obs = torch.cat([data.obs_1[index], data.obs_2[index]]).flatten(0, 1)
        actions = torch.cat([data.act_1[index], data.act_2[index]]).flatten(0, 1)
        return obs, actions

    def evaluate(self, data: PreferenceData) -> dict[str, float]:
        """Accuracy and ECE of the ensemble's mean P_hat, and the Pearson correlation of
        predicted with true segment returns (both sides; NaN without true returns)."""
        p_k = self.member_probabilities(data.obs_1, data.act_1, data.obs_2, data.act_2)
        p_1 = p_k.mean(0).numpy()
        mu = data.mu.numpy()
        correlation = float("nan")
        if data.true_return_1 is not None and data.true_return_2 is not None:
            predicted = np.concatenate(
                [
                    self.segment_returns(data.obs_1, data.act_1),
                    self.segment_returns(data.obs_2, data.act_2),
                ]
            )
            true = torch.cat([data.true_return_1, data.true_return_2]).numpy()
            correlation = pearson(predicted, true)
        return {
            "accuracy": pairwise_accuracy(p_1, mu),
            "ece": expected_calibration_error(p_1, mu),
            "return_correlation": correlation,
        }

    # -- state -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: weights, optimizers, λ_k, normalization, counters."""
        return {
            "config": self.cfg.model_dump(mode="json"),
            "spec": {
                "obs_shape": list(self.spec.obs_shape),
                "action_shape": list(self.spec.action_shape),
                "n_actions": self.spec.n_actions,
            },
            "members": [m.state_dict() for m in self.members],
            "optimizers": [o.state_dict() for o in self.optimizers],
            "l2": list(self.l2),
            "member_mean": self.member_mean.clone(),
            "member_std": self.member_std.clone(),
            "z_mean": self.z_mean,
            "z_std": self.z_std,
            "reference_mean": self.reference_mean,
            "version": self.version,
            "fits": self.fits,
            "obs_statistics_set": self.obs_statistics_set,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``; refuses state of another architecture or input shape."""
        spec = state["spec"]
        got = InputSpec(tuple(spec["obs_shape"]), tuple(spec["action_shape"]), spec["n_actions"])
        if got != self.spec:
            raise SchemaMismatchError(
                f"reward model state is for inputs {got}, this ensemble reads {self.spec}; "
                "load it into an ensemble built for the same environment"
            )
        theirs = RewardModelConfig.model_validate(state["config"])
        for name in ("ensemble_size", "network", "hidden_sizes", "cnn_arch", "use_actions"):
            if getattr(theirs, name) != getattr(self.cfg, name):
                raise SchemaMismatchError(
                    f"reward_model.{name}: the saved ensemble has {getattr(theirs, name)!r}, "
                    f"this one {getattr(self.cfg, name)!r}; build it with the saved config"
                )
        for m, sd in zip(self.members, state["members"], strict=True):
            m.load_state_dict(sd)
        if self._optimizers is None:
            self._optimizer_states = list(state["optimizers"])
        else:
            for o, sd in zip(self._optimizers, state["optimizers"], strict=True):
                o.load_state_dict(sd)
        self.l2 = list(state["l2"])
        self.member_mean = state["member_mean"].clone()
        self.member_std = state["member_std"].clone()
        self.z_mean, self.z_std = float(state["z_mean"]), float(state["z_std"])
        self.reference_mean = float(state.get("reference_mean", 0.0))
        self.version, self.fits = int(state["version"]), int(state["fits"])
        self.obs_statistics_set = bool(state["obs_statistics_set"])

    def save(self, path: str | Path) -> None:
        """Write ``state_dict()`` in the reward-model checkpoint layout that runs use
        (``rlhp.checkpoints.RewardModelCheckpoint``), atomically and durably."""
        RewardModelCheckpoint(self.state_dict()).save(Path(path))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> RewardEnsemble:
        """An ensemble rebuilt from a file written by ``save`` or by a run's reward trainer
        (``reward_model.pt``); loading never runs code from the file."""
        saved = RewardModelCheckpoint.load(Path(path))
        if saved is None:
            raise ConfigError(f"{path}: no reward-model file there; check the path")
        state = saved.model
        cfg = RewardModelConfig.model_validate(state["config"])
        if device is not None:
            cfg = cfg.model_copy(update={"device": device})
        spec = state["spec"]
        ensemble = cls(
            InputSpec(tuple(spec["obs_shape"]), tuple(spec["action_shape"]), spec["n_actions"]),
            cfg,
        )
        ensemble.load_state_dict(state)
        return ensemble
