"""The single-process trainer: bootstrapping at truncation, relabelling, the KL penalty,
determinism by seed and checkpoint round trips. All on real gymnasium / MuJoCo envs."""

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from rlhp.algos.kl_penalty import kl_penalized_rewards
from rlhp.algos.rollout import RolloutCollector
from rlhp.algos.trainer import Learner, OnPolicyTrainer
from rlhp.config import validate_config
from rlhp.errors import ConfigError
from rlhp.nn import PolicyConfig, build_policy
from rlhp.nn.acting import make_actor


class RecordFinalObs(gym.vector.VectorWrapper):
    """Keeps every ``final_obs`` the env reports, keyed by (step, env index)."""

    def __init__(self, env):
        super().__init__(env)
        self.t = 0
        self.final = {}

    def step(self, actions):
        obs, r, term, trunc, infos = self.env.step(actions)
        for i in np.flatnonzero(term | trunc):
            self.final[(self.t, int(i))] = infos["final_obs"][i]
        self.t += 1
        return obs, r, term, trunc, infos


def test_collector_bootstraps_from_final_obs_at_truncation():
    env = RecordFinalObs(
        gym.make_vec(
            "Pendulum-v1",
            num_envs=2,
            vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
            max_episode_steps=7,
        )
    )
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(), env.single_observation_space, env.single_action_space)
    actor = make_actor(policy, np.random.default_rng(0))
    rollout = RolloutCollector(env, seed=0).collect(actor, 30)
    assert not rollout.terminations.any()
    assert rollout.episode_ends[6].all() and rollout.episode_ends.sum() == 2 * 4
    for (t, i), final_obs in env.final.items():
        assert rollout.next_values[t, i] == pytest.approx(
            float(actor.value(final_obs[None].astype(np.float32))[0]), abs=1e-6
        )
        assert rollout.next_values[t, i] != pytest.approx(float(rollout.values[t + 1, i]))
    np.testing.assert_array_equal(rollout.next_values[:6], rollout.values[1:7])
    assert len(rollout.episode_returns) == 8 and all(n == 7 for n in rollout.episode_lengths)


def small_config(**learner):
    return validate_config(
        {
            "seed": 3,
            "total_steps": 1024,
            "device": "cpu",
            "env": {"id": "InvertedPendulum-v5"},
            "learner": {"rollout_steps": 256, **learner},
        }
    )


def test_same_seed_same_run():
    a, b = OnPolicyTrainer(small_config()), OnPolicyTrainer(small_config())
    sa, sb = a.step(), b.step()
    assert sa.metrics == sb.metrics
    for pa, pb in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        torch.testing.assert_close(pa, pb)


def test_reward_fn_relabels_the_batch_with_the_executed_actions():
    """The reward model scores (obs, action as executed): clipped to the bounds, as segments hold."""
    cfg = validate_config({
        "seed": 3, "total_steps": 1024, "device": "cpu", "env": {"id": "InvertedPendulum-v5"},
        "policy": {"init_log_std": 1.5}, "learner": {"rollout_steps": 256, "normalize_reward": False},
    })  # fmt: skip
    trainer = OnPolicyTrainer(cfg, reward_fn=lambda obs, act: obs[..., 1] * 10.0 + act[..., 0])
    rollout = trainer.collector.collect(make_actor(trainer.policy, trainer.np_rng), 64)
    assert np.abs(rollout.actions).max() > 3.0  # some sampled actions lie outside [-3, 3]
    np.testing.assert_array_equal(rollout.env_actions, np.clip(rollout.actions, -3.0, 3.0))
    expected = rollout.obs[..., 1] * 10.0 + rollout.env_actions[..., 0]
    np.testing.assert_allclose(trainer.rewards_for(rollout), expected, rtol=1e-6)


def test_kl_penalty_formula_and_effect():
    r, logp, logp0 = np.array([1.0, 1.0]), np.array([-1.0, -2.0]), np.array([-1.5, -1.0])
    np.testing.assert_allclose(kl_penalized_rewards(r, logp, logp0, 0.1), [1.0 - 0.05, 1.0 + 0.1])

    def kl_after(beta):
        cfg = validate_config(
            {
                "seed": 1,
                "total_steps": 4096,
                "device": "cpu",
                "env": {"id": "CartPole-v1"},
                "learner": {
                    "rollout_steps": 512,
                    "kl_to_initial_coef": beta,
                    "normalize_reward": False,
                    "ppo": {"learning_rate": 3e-3, "anneal_lr": False},
                },
            }
        )
        stats = list(OnPolicyTrainer(cfg).train())
        return stats[-1].metrics["kl_to_initial"]

    free, held = kl_after(1e-9), kl_after(5.0)
    assert held < free / 2, (held, free)


def test_checkpoint_round_trip():
    a = OnPolicyTrainer(small_config(algo="trpo"))
    a.step()
    a.step()
    b = OnPolicyTrainer(small_config(algo="trpo"))
    b.load_state_dict(a.state_dict())
    assert (b.iteration, b.global_step, b.policy_version) == (2, 512, 2)
    for pa, pb in zip(a.policy.state_dict().values(), b.policy.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb)
    assert b.reward_scaler.rms.count == a.reward_scaler.rms.count
    assert b.policy.obs_normalizer.count.item() == pytest.approx(512 + 1e-8)


def test_fused_adam_is_the_foreach_update_up_to_rounding():
    fused = OnPolicyTrainer(small_config())
    foreach = OnPolicyTrainer(small_config(ppo={"fused_adam": False}))
    assert fused.optimizer.param_groups[0]["fused"] is True
    assert foreach.optimizer.param_groups[0]["foreach"] is True
    fused.step()
    foreach.step()
    moved = [(pa - pb).abs().max() for pa, pb in
             zip(fused.policy.parameters(), foreach.policy.parameters(), strict=True)]  # fmt: skip
    assert max(moved) < 1e-5
    start = OnPolicyTrainer(small_config()).policy.parameters()
    assert any(not torch.equal(p, q) for p, q in zip(start, fused.policy.parameters(), strict=True))


def test_a_resumed_run_keeps_the_adam_path_of_its_checkpoint():
    old = OnPolicyTrainer(small_config(ppo={"fused_adam": False}))
    old.step()
    checkpoint = old.state_dict()  # loaded twice below: each load gets its own copy
    resumed = OnPolicyTrainer(small_config())  # today's default: fused
    resumed.load_state_dict(copy.deepcopy(checkpoint))
    group = resumed.optimizer.param_groups[0]
    assert (group["fused"], group["foreach"]) == (None, True)
    as_written = OnPolicyTrainer(small_config(ppo={"fused_adam": False}))
    as_written.load_state_dict(copy.deepcopy(checkpoint))
    resumed.step()
    as_written.step()
    for pa, pb in zip(as_written.policy.parameters(), resumed.policy.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_learning_rate_anneals_linearly():
    trainer = OnPolicyTrainer(small_config())
    lrs = []
    for _ in trainer.train():
        lrs.append(trainer.optimizer.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, [3e-4 * f for f in (1.0, 0.75, 0.5, 0.25)])


def test_trpo_with_a_shared_cnn_trunk_is_refused():
    frames = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    cfg = validate_config({"learner": {"algo": "trpo"}})
    with pytest.raises(ConfigError, match=r"^policy\.cnn_shared_trunk: TRPO"):
        Learner(cfg, frames, gym.spaces.Discrete(4), num_envs=1)
