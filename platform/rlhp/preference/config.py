"""Config sections of preference learning: reward model, query selection, teachers, schedule.

Every field has a default, a unit and a validation rule. The paper's constants are the
defaults, each with a comment citing where in Christiano et al. 2017 ("Deep RL from Human
Preferences", arXiv:1706.03741) or Lee et al. 2021 ("B-Pref", arXiv:2111.03026) it comes
from. The top-level ``RunConfig`` composes these sections.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from rlhp.errors import ConfigError


class RewardModelConfig(BaseModel):
    """The reward predictor ensemble r_hat (Christiano et al. section 2.2.3, appendix A)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Not in the paper: a diagnostic. "oracle" replaces r_hat by the true reward pushed
    # through exactly the path r_hat takes (same refit cadence, output normalization,
    # learner scaling, KL penalty), so optimizer or normalization problems can be told
    # apart from reward-model errors (docs/preferences.md, "Why Hopper failed").
    kind: Literal["ensemble", "oracle"] = Field(
        "ensemble",
        description="ensemble: the paper's r_hat; oracle: the true reward through r_hat's "
        "path (a diagnostic: it reads true rewards)",
    )
    # Section 2.1: the reward model is refitted "asynchronously" as labels arrive; False
    # freezes it after the fit on the initial labels (an ablation of non-stationarity).
    refit_online: bool = Field(
        True, description="refit as labels arrive; False: freeze after the initial fit"
    )
    # Section 2.2.1 normalizes r_hat "to have zero mean and constant standard deviation"
    # without saying over which data. per_fit: the most recent rollout steps (on-policy),
    # refitted after every fit; labelled: the steps of the labelled segments (the training
    # distribution, which moves slowly); none: the members' raw outputs, averaged.
    output_normalization: Literal["per_fit", "labelled", "none"] = Field(
        "per_fit",
        description="per_fit: standardize r_hat on recent on-policy steps after every fit; "
        "labelled: on the labelled segments' steps; none: raw ensemble mean",
    )
    # Section 2.2.3: "we use an ensemble of predictors". The paper does not state K; 3 is the
    # ensemble size of the B-Pref and PEBBLE reference implementations.
    ensemble_size: int = Field(3, ge=1, le=64, description="K, members of the ensemble (count)")
    network: Literal["mlp", "cnn"] = Field(
        "mlp", description="'mlp' for vector observations, 'cnn' for [C, H, W] uint8 frames"
    )
    # Appendix A.1 (MuJoCo): "two layers of 64 units with leaky ReLU (α = 0.01)".
    hidden_sizes: tuple[int, ...] = Field(
        (64, 64), description="MLP hidden layer widths (units), or the CNN's dense layer"
    )
    leaky_relu_slope: float = Field(0.01, ge=0.0, lt=1.0, description="leaky ReLU α (A.1, A.2)")
    # Appendix A.2 (Atari): 4 conv layers 7x7/3, 5x5/2, 3x3/1, 3x3/1, 16 filters each,
    # batch norm and dropout 0.5, then a dense layer of 64. This is smaller than the Nature
    # CNN of Mnih et al. 2015 (8x8/4 32, 4x4/2 64, 3x3/1 64), offered as 'nature'.
    cnn_arch: Literal["christiano2017", "nature"] = Field(
        "christiano2017", description="conv trunk for network='cnn' (appendix A.2 or Nature)"
    )
    cnn_batch_norm: bool = Field(True, description="batch norm after each conv layer (A.2)")
    # Section 2.2.3: "In some domains we also apply dropout"; A.2 uses 0.5 on Atari.
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="dropout probability (0 = off)")
    use_actions: bool = Field(True, description="feed the action with the observation")
    # Not in the paper: standardizing vector observations (fitted once, on the labelled
    # segments of the first fit, then frozen) speeds up fitting on MuJoCo, whose
    # observation features differ in scale by two orders of magnitude.
    normalize_obs: bool = Field(
        True, description="MLP only: standardize observation features (mean/std, first fit)"
    )
    learning_rate: float = Field(3e-4, gt=0.0, le=1.0, description="Adam step size")
    batch_size: int = Field(64, ge=1, description="labelled pairs per gradient step")
    epochs_per_fit: int = Field(
        5, ge=1, description="passes over each member's bootstrap sample per fit() call"
    )
    # Section 2.2.3: "A fraction of 1/e of the data is held out to be used as a validation set".
    validation_fraction: float = Field(
        1.0 / math.e, gt=0.0, lt=1.0, description="share of labels held out for validation"
    )
    # Section 2.2.3: "each trained on |D| triples sampled from D with replacement".
    bootstrap: bool = Field(True, description="train each member on its own bootstrap resample")
    # Section 2.2.3: "adjust the regularization coefficient to keep the validation loss
    # between 1.1 and 1.5 times the training loss".
    l2_init: float = Field(1e-3, ge=0.0, description="initial L2 coefficient λ (per weight²)")
    l2_band: tuple[float, float] = Field(
        (1.1, 1.5), description="target band for validation loss / training loss"
    )
    l2_adapt: bool = Field(True, description="adapt λ to keep the loss ratio in l2_band")
    l2_adapt_factor: float = Field(
        1.1, gt=1.0, description="λ is multiplied or divided by this when the ratio leaves band"
    )
    l2_min: float = Field(1e-8, gt=0.0, description="floor of the adapted λ")
    l2_max: float = Field(10.0, gt=0.0, description="ceiling of the adapted λ")
    # Section 2.2.3: "we assume there is a 10% chance that the human responds uniformly at
    # random".
    random_response_prob: float = Field(
        0.1, ge=0.0, lt=1.0, description="ε, chance of a uniformly random answer in P_hat"
    )
    # Section 2.2.1: normalized "to have zero mean and constant standard deviation";
    # A.1 uses standard deviation 1 (MuJoCo), A.2 uses 0.05 (Atari).
    reward_std: float = Field(1.0, gt=0.0, description="standard deviation of r_hat (reward)")
    normalization_steps: int = Field(
        10_000, ge=2, description="most recent steps used to fit r_hat's mean and std (steps)"
    )
    device: str = Field("cpu", description="torch device, e.g. 'cpu' or 'cuda'")
    seed: int = Field(0, ge=0, description="seeds initialization, bootstrap, split, minibatches")
    keep_versions: bool = Field(
        False,
        description="also keep every fitted version in RUN_DIR/reward_models/ (v0001.pt, ...; "
        "a few hundred kB each), to study how r_hat changed over a run",
    )
    # Askell et al. 2021 (preference-model pre-training): fit on a large, cheap label source
    # first (a noisy teacher's run, another task with the same spaces, earlier people), then
    # fine-tune on this run's labels.
    pretrain_from: tuple[str, ...] = Field(
        (),
        description="earlier runs (id under runtime.runs_dir, run directory, or its labels/ "
        "directory) whose labels pre-train the ensemble before this run's first fit",
    )
    pretrain_from_epochs: int = Field(
        20, ge=1, description="epochs on the pretrain_from labels (passes per member)"
    )
    finetune_lr: float | None = Field(
        None, gt=0.0, le=1.0, description="Adam step size after pre-training (None: learning_rate)"
    )

    @model_validator(mode="after")
    def _check(self) -> RewardModelConfig:
        lo, hi = self.l2_band
        if not 1.0 <= lo < hi:
            raise ConfigError(
                f"reward_model.l2_band: need 1 <= low < high, got {self.l2_band}; "
                "the paper uses (1.1, 1.5)"
            )
        if self.l2_min > self.l2_max:
            raise ConfigError("reward_model.l2_min: must be <= reward_model.l2_max")
        if self.kind == "oracle" and self.output_normalization == "labelled":
            raise ConfigError(
                "reward_model.output_normalization: 'labelled' needs a network to score the "
                "labelled steps; the oracle supports per_fit or none"
            )
        if not self.hidden_sizes or any(h < 1 for h in self.hidden_sizes):
            raise ConfigError(
                f"reward_model.hidden_sizes: need at least one positive width, "
                f"got {self.hidden_sizes}"
            )
        return self


class QueryConfig(BaseModel):
    """How pairs are chosen for labelling (Christiano et al. section 2.2.4)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal["random", "disagreement", "entropy"] = Field(
        "disagreement",
        description="random pairs; top-k ensemble variance (2.2.4); top-k entropy of mean P",
    )
    # Section 2.2.4 samples "a large number of pairs" and keeps the top; B-Pref and PEBBLE
    # use a pool ten times the batch of queries.
    candidate_multiplier: int = Field(
        10, ge=1, description="candidate pairs scored per query asked (ratio)"
    )
    same_env_only: bool = Field(True, description="only pair segments of the same env_id")
    seed: int = Field(0, ge=0, description="seeds candidate sampling and random selection")


_BPREF_KNOBS: dict[str, dict[str, float]] = {
    # B-Pref (Lee et al. 2021, section 3.1) defaults of its named teachers
    "stoc": {"beta": 1.0},
    "mistake": {"epsilon": 0.1},
    "myopic": {"gamma": 0.9},
}


class TeacherConfig(BaseModel):
    """A simulated teacher (B-Pref, Lee et al. 2021, section 3.1); defaults: perfect oracle.

    ``kind`` names B-Pref's teachers; a kind sets its knob to B-Pref's default unless the
    knob is given (``teacher.kind=mistake teacher.epsilon=0.2``). ``shuffled`` is a control,
    not a teacher: its answers are independent of the clips (each is the oracle's answer to
    a random earlier or current query), so a run on it must not learn the task.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal[
        "oracle", "stoc", "mistake", "myopic", "skip", "equal", "shuffled", "judge", "human"
    ] = Field(
        "oracle",
        description="who answers: a B-Pref simulated teacher (oracle, stoc, mistake, myopic, "
        "skip, equal), the 'shuffled' control, an AI 'judge' (teacher.judge), or 'human' "
        "(people in the labelling web app, section feedback)",
    )
    # Seed section 2.4 (AI feedback): any callable comparing two segments.
    judge: str | None = Field(
        None,
        description="teacher.kind=judge: `package.module:function` or `path/to/file.py:function`, "
        "called as fn(left, right) with two SegmentRecords; returns P(left better) in [0, 1], "
        "or None to abstain",
    )
    judge_tie_margin: float = Field(
        0.0, ge=0.0, lt=0.5, description="judge answers within this of 0.5 count as a tie"
    )

    # B-Pref "Oracle" is beta = inf; "Stoc" uses beta = 1.
    beta: float = Field(
        math.inf, gt=0.0, description="rationality β of the Bradley-Terry answer (inf = argmax)"
    )
    # B-Pref "Myopic" uses gamma = 0.9; 1 = no discount.
    gamma: float = Field(
        1.0, gt=0.0, le=1.0, description="myopic discount: step t weighs gamma^(L-1-t)"
    )
    # B-Pref "Mistake" uses epsilon = 0.1.
    epsilon: float = Field(0.0, ge=0.0, le=1.0, description="probability of flipping the answer")
    # B-Pref "Skip": skip when both returns are below the threshold (true-return units).
    skip_threshold: float | None = Field(
        None, description="skip the query if both segment returns are below this (None = off)"
    )
    # B-Pref "Equal": tie when the returns differ by less than the threshold.
    equal_threshold: float = Field(
        0.0, ge=0.0, description="answer 0.5 when |R_left - R_right| < this (return units)"
    )
    name: str = Field("oracle", min_length=1, description="labeler name recorded with labels")
    seed: int = Field(0, ge=0, description="seeds the teacher's random answers")

    @model_validator(mode="before")
    @classmethod
    def _bpref_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            kind = data.get("kind", "oracle")
            knobs = {k: v for k, v in _BPREF_KNOBS.get(kind, {}).items() if k not in data}
            data = {**data, **knobs}
            if kind != "oracle" and "name" not in data:
                data["name"] = kind
        return data

    @model_validator(mode="after")
    def _thresholds_for_skip_and_equal(self) -> TeacherConfig:
        if self.kind == "judge" and not self.judge:
            raise ConfigError(
                "teacher.judge: teacher.kind=judge needs the judge to call, e.g. "
                "teacher.judge=examples/judges.py:hopper_upright_and_forward"
            )
        if self.judge and self.kind != "judge":
            raise ConfigError(
                f"teacher.judge: set only with teacher.kind=judge (teacher.kind is {self.kind!r})"
            )
        if self.kind == "skip" and self.skip_threshold is None:
            raise ConfigError(
                "teacher.skip_threshold: teacher.kind=skip needs a threshold in return units "
                "(B-Pref: 0.1 x the average segment return), e.g. teacher.skip_threshold=5"
            )
        if self.kind == "equal" and self.equal_threshold == 0.0:
            raise ConfigError(
                "teacher.equal_threshold: teacher.kind=equal needs a threshold in return units "
                "(B-Pref: 0.1 x the average segment return), e.g. teacher.equal_threshold=5"
            )
        return self

    @property
    def is_perfect(self) -> bool:
        """True when this teacher is B-Pref's oracle (no noise of any kind)."""
        return (
            self.kind == "oracle"
            and math.isinf(self.beta)
            and self.gamma == 1.0
            and self.epsilon == 0.0
            and self.skip_threshold is None
            and self.equal_threshold == 0.0
        )


class LabelScheduleConfig(BaseModel):
    """When labels are asked for (Christiano et al. section 2.2.4 and appendix A)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    total_labels: int = Field(700, ge=1, description="label budget for the whole run (labels)")
    total_timesteps: int = Field(
        1_000_000, ge=1, description="env steps of the whole run the budget is spread over"
    )
    # A.1 (MuJoCo): rate proportional to 2*10^6 / (T + 2*10^6); A.2 (Atari): 5*10^6.
    decay_timesteps: float = Field(
        2e6, gt=0.0, description="c in the label rate c / (T + c) (env steps)"
    )
    # A.1: "25% of our comparisons from a randomly initialized policy network at the
    # beginning of training"; A.2 (Atari) asks 500 labels up front.
    initial_labels: int = Field(
        175, ge=0, description="labels asked from random-policy segments before training"
    )
    # Not in the paper, which draws the initial comparisons from "a randomly initialized
    # policy" without saying from how many clips. One rollout of a MuJoCo preset holds only
    # ~40 segments, so 175 initial labels would reuse each segment ~9 times; this asks the
    # random policy for more segments first (rollouts that are not trained on).
    initial_segments_per_label: float = Field(
        0.0,
        ge=0.0,
        description="distinct random-policy segments to collect per initial label before "
        "asking them (0: only the first rollout's)",
    )
    # A.2: "pretrained the reward predictor for 200 epochs" on the initial labels (Atari).
    pretrain_epochs: int = Field(
        0, ge=0, description="reward-model epochs on the initial labels before RL starts"
    )
    # Label reuse: a new run starts with another run's labels and the segments they name,
    # copied into its own stores; they count toward total_labels (and initial_labels), so
    # only the rest is asked.
    reuse_from: tuple[str, ...] = Field(
        (),
        description="earlier runs (id under runtime.runs_dir, run directory, or its labels/ "
        "directory) whose labels and segments this run starts with",
    )

    @model_validator(mode="after")
    def _check(self) -> LabelScheduleConfig:
        if self.initial_labels > self.total_labels:
            raise ConfigError(
                f"label_schedule.initial_labels: {self.initial_labels} exceeds "
                f"label_schedule.total_labels={self.total_labels}; lower it or raise the budget"
            )
        return self
