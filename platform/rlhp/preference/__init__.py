"""Preference learning core (no Ray): reward ensemble, query selection, teachers, schedule.

Christiano et al. 2017 ("Deep RL from Human Preferences") sections 2.2.1-2.2.4 and
appendix A; B-Pref simulated teachers (Lee et al. 2021); preference-model pre-training
(Askell et al. 2021).
"""

from rlhp.preference.config import (
    LabelScheduleConfig,
    QueryConfig,
    RewardModelConfig,
    TeacherConfig,
)
from rlhp.preference.dataset import PreferenceData
from rlhp.preference.ensemble import FitReport, RewardEnsemble
from rlhp.preference.labelers import CallableJudgeLabeler, Labeler, to_label_records
from rlhp.preference.losses import bradley_terry_loss, preference_probability
from rlhp.preference.networks import InputSpec
from rlhp.preference.pretraining import pretrain_on_initial_labels, pretrain_then_finetune
from rlhp.preference.query import (
    DisagreementSelector,
    EntropySelector,
    QuerySelector,
    RandomSelector,
    make_selector,
    select_queries,
)
from rlhp.preference.schedule import LabelSchedule
from rlhp.preference.teachers import SimulatedTeacher, bpref_teacher

__all__ = [
    "CallableJudgeLabeler",
    "DisagreementSelector",
    "EntropySelector",
    "FitReport",
    "InputSpec",
    "LabelSchedule",
    "LabelScheduleConfig",
    "Labeler",
    "PreferenceData",
    "QueryConfig",
    "QuerySelector",
    "RandomSelector",
    "RewardEnsemble",
    "RewardModelConfig",
    "SimulatedTeacher",
    "TeacherConfig",
    "bpref_teacher",
    "bradley_terry_loss",
    "make_selector",
    "preference_probability",
    "pretrain_on_initial_labels",
    "pretrain_then_finetune",
    "select_queries",
    "to_label_records",
]
