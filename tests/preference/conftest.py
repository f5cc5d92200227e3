"""Shared fixtures: a small synthetic preference problem with a known linear reward."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from rlhp.data.records import SegmentRecord

OBS_DIM, ACT_DIM, LENGTH = 4, 2, 10


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    # Small MLPs: one intra-op thread is fastest and keeps results independent of the host.
    torch.set_num_threads(1)


def synthetic_segments(n: int, seed: int, length: int = LENGTH) -> list[SegmentRecord]:
    """Segments with Gaussian obs/actions and true reward r_t = w · o_t + 0.5 a_t[0]."""
    rng = np.random.default_rng(seed)
    w = np.array([1.0, -0.5, 0.25, 0.0])
    out = []
    for i in range(n):
        obs = rng.normal(size=(length, OBS_DIM)).astype(np.float32)
        act = rng.normal(size=(length, ACT_DIM)).astype(np.float32)
        r = (obs @ w + 0.5 * act[:, 0]).astype(np.float32)
        out.append(SegmentRecord(f"s{seed}-{i}", "run", "Synth-v0", 0, 0, i * length, obs, act, r))
    return out


@pytest.fixture
def make_segments() -> Callable[..., list[SegmentRecord]]:
    return synthetic_segments


def oracle_pairs(
    segments: list[SegmentRecord],
) -> tuple[list[tuple[SegmentRecord, SegmentRecord]], list[float]]:
    """Consecutive pairs and the perfect answer for each."""
    pairs = [(segments[2 * i], segments[2 * i + 1]) for i in range(len(segments) // 2)]
    prefs = [1.0 if a.true_rewards.sum() > b.true_rewards.sum() else 0.0 for a, b in pairs]
    return pairs, prefs


@pytest.fixture
def make_oracle_pairs() -> Callable[..., tuple[list, list[float]]]:
    return oracle_pairs
