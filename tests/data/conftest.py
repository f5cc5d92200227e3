"""Shared helpers for the data tests: small Hopper-like and Atari-like segments."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from rlhp.data.records import LabelRecord, SegmentRecord


def hopper_like(i: int, length: int = 6, env_id: str = "Hopper-v5") -> SegmentRecord:
    rng = np.random.default_rng(i)
    return SegmentRecord(
        segment_id=f"run/0/{i}",
        run_id="run",
        env_id=env_id,
        worker=i % 3,
        policy_version=i // 10,
        t_start=i * length,
        obs=rng.normal(size=(length, 11)).astype(np.float32),
        actions=rng.uniform(-1, 1, size=(length, 3)).astype(np.float32),
        true_rewards=rng.normal(size=length).astype(np.float32),
        render_state={
            "qpos": rng.normal(size=(length, 6)),
            "qvel": rng.normal(size=(length, 6)),
        },
        created_at=1000.0 + i,
    )


@pytest.fixture
def make_segment() -> Callable[..., SegmentRecord]:
    return hopper_like


def label(i: int, left: str, right: str, preference: float | None = 1.0) -> LabelRecord:
    return LabelRecord(
        label_id=f"label-{i}",
        left=left,
        right=right,
        preference=preference,
        source="synthetic",
        labeler="oracle",
        query_strategy="random",
        created_at=float(i),
    )


@pytest.fixture
def make_label() -> Callable[..., LabelRecord]:
    return label
