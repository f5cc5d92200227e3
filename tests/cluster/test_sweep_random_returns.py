"""The random policy's return, the zero of a sweep's normalized ratios, is cached per env
*setting*, not per env id: a task whose settings change after the first summary is measured
again, never normalized by a stale zero. Real Pendulum-v1 episodes, no Ray."""

import json

from rlhp.cluster.sweep import Trial, random_policy_returns, random_return_settings
from rlhp.cluster.sweep_store import SweepStore
from rlhp.config import load_config


def _configs(episode_steps: int, segment_steps: int = 25):
    cfg = load_config(
        "default",
        [
            "env.id=Pendulum-v1",
            "env.fixed_length_episodes=true",
            f"env.episode_steps={episode_steps}",
            f"env.segment_steps={segment_steps}",
        ],
    )
    return {Trial("Pendulum-v1", 0, labels=20): cfg, Trial("Pendulum-v1", 0, true_reward=True): cfg}


def test_random_return_is_remeasured_when_env_settings_change(tmp_path):
    store = SweepStore(tmp_path, "s").ensure()
    path = store.root / "random_returns.json"
    path.write_text(json.dumps({"Pendulum-v1": 0.0}))  # the old per-env-id file: not trusted

    first = random_policy_returns(store, _configs(200), episodes=2)
    assert set(first) == {("Pendulum-v1", "")}
    assert first[("Pendulum-v1", "")] < -100  # measured, not the old file's 0.0
    (entry,) = json.loads(path.read_text())
    assert entry["env"]["episode_steps"] == 200 and entry["episodes"] == 2

    # recording-only settings (clip length) are not part of the key: the entry is reused
    assert random_policy_returns(store, _configs(200, segment_steps=10), episodes=2) == first
    assert len(json.loads(path.read_text())) == 1

    # an episode 4x shorter: a new entry, and a return about a quarter as negative
    shorter = random_policy_returns(store, _configs(50), episodes=2)
    entries = json.loads(path.read_text())
    assert sorted(e["env"]["episode_steps"] for e in entries) == [50, 200]
    assert first[("Pendulum-v1", "")] < 2 * shorter[("Pendulum-v1", "")] < 0


def test_random_return_settings_keep_every_setting_but_recording_ones():
    cfg = load_config("default", ["env.id=Pendulum-v1"])
    settings = random_return_settings(cfg.env)
    assert "segment_steps" not in settings and "num_envs" not in settings
    assert {"id", "episode_steps", "termination_penalty", "make_kwargs"} <= set(settings)
