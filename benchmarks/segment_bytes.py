"""Bytes on disk per labelled (pinned) segment, per env family: what label stores cost.

Real envs, random actions, render_clips on (what a run keeps so a clip can be shown):
Pendulum-v1 (classic control: its state vector per step), Hopper-v5 (MuJoCo: qpos/qvel),
ALE/Pong-v5 (the agent's 4-frame stack and one grey frame per step). Each segment is pinned
to a fresh segment store; the figure is the pinned files' size over the segment count,
zstd-compressed (what the store writes) and, for comparison, the same table uncompressed.

  python benchmarks/segment_bytes.py [--segments 20]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from rlhp.data.schemas import SegmentSpec, records_to_batch
from rlhp.data.segment_store import SegmentStore
from rlhp.envs import EnvConfig, SegmentCutter, make_vector_env, segment_length

FAMILIES = {
    "classic control": EnvConfig(id="Pendulum-v1", render_clips=True),
    "MuJoCo": EnvConfig(id="Hopper-v5", render_clips=True, fixed_length_episodes=True),
    "Atari": EnvConfig(id="ALE/Pong-v5", render_clips=True, mask_score=True),
}


def segments(
    cfg: EnvConfig, n: int, seed: int = 0, act: Callable[[np.ndarray], np.ndarray] | None = None
) -> list:
    """``n`` consecutive segments of a uniformly random policy (or of ``act(obs)``, clipped
    to the action bounds), cut as the rollout workers cut them (aligned, non-overlapping,
    never across an episode's end)."""
    env = make_vector_env(cfg, seed=seed)
    length = segment_length(cfg, env.dt)
    cutter = SegmentCutter(
        env_id=cfg.id, run_id="bench", worker=0, num_envs=env.num_envs, length=length
    )
    env.action_space.seed(seed)
    obs, infos = env.reset(seed=seed)
    state, out = env.render_state(obs, infos), []
    while len(out) < n:
        if act is None:
            actions = env.action_space.sample()
        else:
            space = env.single_action_space
            actions = np.clip(act(obs), space.low, space.high)
        next_obs, _, term, trunc, infos = env.step(actions)
        out += cutter.add(obs, actions, infos["true_reward"], state, term | trunc, 0)
        obs, state = next_obs, env.render_state(next_obs, infos)
    env.close()
    return out[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--segments", type=int, default=20)
    args = ap.parse_args()
    print("| family | env | steps per segment | bytes per segment (zstd) | uncompressed |")
    print("|---|---|---|---|---|")
    for family, cfg in FAMILIES.items():
        records = segments(cfg, args.segments)
        with tempfile.TemporaryDirectory() as tmp:
            store = SegmentStore(len(records), tmp)
            store.add(records)
            store.pin([r.segment_id for r in records])
            zstd = sum(f.stat().st_size for f in Path(tmp).glob("pinned-*.arrow"))
        sink = pa.BufferOutputStream()
        batch = records_to_batch(records, SegmentSpec.from_record(records[0]))
        with pa.ipc.new_file(sink, batch.schema) as writer:
            writer.write_batch(batch)
        raw = sink.getvalue().size
        n = len(records)
        print(f"| {family} | {cfg.id} | {records[0].length} | {zstd / n:,.0f} | {raw / n:,.0f} |")


if __name__ == "__main__":
    main()
