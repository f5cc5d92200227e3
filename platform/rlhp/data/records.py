"""In-memory records exchanged between the rollout side and the data stores.

The Arrow schemas in ``rlhp.data`` are the durable form of these records; these
dataclasses are what producers (segment cutters in ``rlhp.envs``) hand over and what
consumers get back as numpy views.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SegmentRecord:
    """One fixed-length clip of agent experience (DESIGN.md, "Segment").

    Arrays are indexed by step along axis 0 and all have the segment length ``L``.
    ``true_rewards`` is for synthetic teachers and evaluation only; the learner never sees it.
    ``render_state`` holds what it takes to show the clip to a person later: for MuJoCo the
    physics state per step (``qpos`` [L, nq], ``qvel`` [L, nv]); for Atari RGB ``frames``
    [L, H, W, 3] uint8.
    """

    segment_id: str
    run_id: str
    env_id: str
    worker: int
    policy_version: int
    t_start: int
    obs: np.ndarray
    actions: np.ndarray
    true_rewards: np.ndarray
    render_state: dict[str, np.ndarray] = field(default_factory=dict)
    created_at: float = 0.0

    @property
    def length(self) -> int:
        return int(self.obs.shape[0])


# Preference values of a label (DESIGN.md, "Label"): the weight μ(1) that the labeler puts on
# the left segment, as in Christiano et al. 2017 section 2.2 (μ is a distribution over {1, 2}).
PREFER_LEFT = 1.0
PREFER_RIGHT = 0.0
TIE = 0.5
VALID_PREFERENCES = (PREFER_RIGHT, TIE, PREFER_LEFT)


@dataclass(frozen=True)
class LabelRecord:
    """One answer to "which of these two clips is better?" (DESIGN.md, "Label").

    ``preference`` is μ(left): 1.0 left better, 0.0 right better, 0.5 equally good, and
    ``None`` for "can't tell" (recorded, never trained on). ``source`` is ``synthetic``,
    ``noisy:<kind>``, ``human`` or ``judge:<name>``; ``labeler`` names who answered;
    ``query_strategy`` names the selector that asked.
    """

    label_id: str
    left: str
    right: str
    preference: float | None
    source: str
    labeler: str
    query_strategy: str
    created_at: float = 0.0
