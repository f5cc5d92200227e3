"""``learner.backend=rllib``: the preference loop with an RLlib Algorithm as policy process.

The learning check is the rlhp backend's (``test_learning_from_preferences``): the same
InvertedPendulum-v5 settings, budget and absolute bar, from synthetic labels through the
same segment buffer, labelling actor, reward trainer and label store.
"""

import os
import signal
import subprocess
import sys

import pytest
import torch
from mlflow import MlflowClient
from tests.runtime.test_fault_and_resume import assert_same_state
from tests.runtime.test_learning_from_preferences import BAR, SETTINGS

from rlhp.config import load_config
from rlhp.data.label_store import read_labels
from rlhp.data.segment_store import SegmentStore
from rlhp.errors import ConfigError
from rlhp.runtime.events import Progress
from rlhp.runtime.loop import PreferenceRun


def _run(isolated, *extra):
    cfg = load_config(
        "inverted_pendulum_true_reward", isolated(*SETTINGS, "learner.backend=rllib", *extra)
    )
    return PreferenceRun(cfg).run()


@pytest.mark.slow
def test_rllib_backend_learns_from_synthetic_labels(ray_cluster, isolated):
    result = _run(isolated)
    print(f"rllib backend: eval return {result.eval_return:.1f} from {result.labels} labels")
    assert result.labels >= 100
    assert result.global_step == 57344  # steps trained on (the initial segments' not counted)
    assert result.eval_return >= BAR
    # where each iteration's time went inside Algorithm.train(), by RLlib's own timers
    store = f"sqlite:///{result.run_dir.parent.parent}/mlflow.db"  # isolated()'s
    metrics = MlflowClient(store).get_run(result.run_id).data.metrics
    for name in ("rllib/sampling_s", "rllib/learner_update_s", "rllib/sync_weights_s"):
        assert metrics[name] > 0, name


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("learner.algo=trpo", "learner.algo"),
        ("runtime.overlap_sampling=true", "runtime.overlap_sampling"),
        ("learner.kl_to_initial_coef=0.1", "learner.kl_to_initial_coef"),
        (
            "learner.rllib.num_aggregator_actors_per_learner=1",
            "learner.rllib.num_aggregator_actors_per_learner",
        ),
    ],
)
def test_settings_rllib_does_not_run_are_one_line(isolated, override, field):
    with pytest.raises(ConfigError, match=f"^{field}: "):
        load_config("inverted_pendulum_true_reward", isolated("learner.backend=rllib", override))


def _stopped_at(cfg, iteration: int) -> PreferenceRun:
    """A run stopped (Ctrl-C) after ``iteration`` iterations: it checkpointed first."""
    run = PreferenceRun(cfg)

    def stop(m):
        if getattr(m, "iteration", None) == iteration:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run.run(stop)
    return run


class CheckedRLlibRun(PreferenceRun):
    """Records the Algorithm's policy right after resuming."""

    def _restore(self) -> None:
        super()._restore()
        self.restored_policy = self.rllib.policy_state()


@pytest.mark.slow
def test_stopped_rllib_run_resumes_from_its_checkpoint(ray_cluster, isolated):
    short = ("total_steps=12288", "learner.rollout_steps=512", "runtime.checkpoint_every=2",
             "label_schedule.total_labels=40", "label_schedule.initial_labels=10")  # fmt: skip
    cfg = load_config(None, isolated("learner.backend=rllib", *short))
    run = _stopped_at(cfg, 4)
    ckpt = torch.load(run.run_dir / "checkpoint.pt", weights_only=False)
    assert ckpt["iteration"] == 4 and ckpt["global_step"] == 4 * 2048
    assert (run.run_dir / "rllib").is_dir()  # the Algorithm's own checkpoint beside it
    client = MlflowClient(cfg.tracking.uri)
    assert client.get_run(run.run_id).info.status == "KILLED"

    resumed = CheckedRLlibRun(cfg, resume_run_id=run.run_id)
    steps = []
    result = resumed.run(lambda m: steps.append(m.global_step) if isinstance(m, Progress) else None)
    assert_same_state(resumed.restored_policy, ckpt["learner"]["learner"]["policy"], "policy")
    assert steps[0] == 5 * 2048  # continues after the checkpoint, not from 0
    assert result.global_step == 12288 and result.run_id == run.run_id
    labels = read_labels(run.run_dir / "labels").column("label_id").to_pylist()
    assert len(labels) == len(set(labels)) == result.labels
    assert client.get_run(run.run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_killed_env_runner_loses_no_label(ray_cluster, isolated):
    """RLlib restarts a killed EnvRunner (its fault tolerance); the run completes and the
    label store holds every acknowledged label once, each naming a stored segment."""
    short = ("total_steps=12288", "learner.rollout_steps=512", "label_schedule.total_labels=40",
             "label_schedule.initial_labels=10", "label_schedule.total_timesteps=6144")  # fmt: skip
    cfg = load_config(None, isolated("learner.backend=rllib", *short))
    run = PreferenceRun(cfg)
    killed, later = [], []

    def pids():
        group = run.rllib.algo.env_runner_group
        return group.foreach_env_runner(lambda r: os.getpid(), local_env_runner=False)

    def kill_at_2(m):
        if getattr(m, "iteration", None) == 2 and not killed:
            killed.extend(pids())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)
        if getattr(m, "iteration", None) == 5 and not later:
            later.extend(pids())

    result = run.run(kill_at_2)
    assert len(killed) == 1
    assert result.global_step == 12288
    labels = read_labels(run.run_dir / "labels")
    ids = labels.column("label_id").to_pylist()
    assert len(ids) == len(set(ids)) == result.labels >= 35
    segs = set(labels.column("left").to_pylist()) | set(labels.column("right").to_pylist())
    assert segs <= SegmentStore(1, run.run_dir / "segments").pinned_ids
    assert later and later != killed  # a new EnvRunner process sampled after the kill


def test_env_runner_episodes_carry_the_true_reward_and_return():
    """What the segments and the learned-reward connector read from RLlib's episodes: the
    true reward of each step (the env's ``infos``, the info after the step), and at an
    episode's end its true return, which ``log_true_return`` reports."""
    import numpy as np
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.env.single_agent_env_runner import SingleAgentEnvRunner

    from rlhp.rllib_backend.process import make_env
    from rlhp.rllib_backend.segments import TRUE_RETURN, log_true_return, true_rewards

    cfg = load_config("inverted_pendulum_true_reward", ["env.episode_steps=50",
                      "env.fixed_length_episodes=true", "env.termination_penalty=1.0"])  # fmt: skip
    config = (
        PPOConfig()
        .environment(env=make_env, env_config={"env": cfg.env.model_dump(mode="json"), "seed": 0})
        .env_runners(
            num_env_runners=0,
            num_envs_per_env_runner=2,
            rollout_fragment_length=120,
            gym_env_vectorize_mode="vector_entry_point",
        )
    )
    episodes = SingleAgentEnvRunner(config=config).sample(num_timesteps=240, random_actions=True)
    logged = []

    class Logger:
        def log_value(self, key, value, **kwargs):
            logged.append((key, value))

    for ep in episodes:
        rewards = true_rewards(ep, len(ep))
        assert np.array_equal(rewards, ep.get_rewards())  # no clipping: the same numbers
        if ep.is_done:
            log_true_return(episode=ep, metrics_logger=Logger())
            assert logged[-1] == (TRUE_RETURN, pytest.approx(float(rewards.sum())))
    assert len(logged) >= 4 and any(r < 50 for _, r in logged)  # the penalty counts


def test_appo_needs_the_rllib_backend(isolated):
    with pytest.raises(ConfigError, match=r"^learner\.algo: APPO runs on RLlib"):
        load_config(None, isolated("learner.algo=appo"))


@pytest.mark.slow
def test_appo_runs_the_preference_loop(ray_cluster, isolated):
    """APPO (EnvRunners sampling while the Learner thread updates): the same segments,
    labels and learned reward as PPO; every iteration samples a full rollout's steps."""
    short = ("learner.algo=appo", "total_steps=8192", "learner.rollout_steps=512",
             "label_schedule.total_labels=30", "label_schedule.initial_labels=10",
             "label_schedule.total_timesteps=4096")  # fmt: skip
    cfg = load_config(None, isolated("learner.backend=rllib", *short))
    result = PreferenceRun(cfg).run()
    # the EnvRunners sample on while the driver labels and fits: the budget is a floor
    assert 8192 <= result.global_step < 2 * 8192
    labels = read_labels(result.run_dir / "labels")
    assert len(labels) == result.labels >= 25
    client = MlflowClient(cfg.tracking.uri)
    # logged on the first update that used a fitted reward model: r_hat reached the Learner
    assert client.get_metric_history(result.run_id, "label_to_policy_latency_s")
    entropy = client.get_metric_history(result.run_id, "entropy")
    assert entropy and entropy[0].value != entropy[-1].value  # the policy was updated


def test_appo_with_trpo_settings_is_one_line(isolated):
    with pytest.raises(ConfigError, match=r"^learner\.trpo: APPO does not use TRPO's settings"):
        load_config("mujoco_synthetic", isolated("learner.backend=rllib", "learner.algo=appo"))


def test_learner_scaling_needs_the_rllib_backend(isolated):
    with pytest.raises(ConfigError, match=r"^learner\.rllib: these settings scale RLlib"):
        load_config(None, isolated("learner.rllib.num_learners=1"))


@pytest.mark.slow
@pytest.mark.parametrize(
    "scale",
    [
        ("learner.algo=ppo", "learner.rllib.num_learners=1"),
        (
            "learner.algo=appo",
            "learner.rllib.num_learners=1",
            "learner.rllib.num_aggregator_actors_per_learner=1",
        ),
    ],
    ids=["ppo-learner-actor", "appo-learner-actor-and-aggregator"],
)
def test_learner_actors_run_the_preference_loop(ray_cluster, isolated, scale):
    """Learning outside the driver: a Learner actor (and, for APPO, an aggregator actor that
    runs the learned-reward connector): every reward model version reaches them, the
    checkpoint holds their policy, and a stopped run resumes from it."""
    short = ("total_steps=8192", "learner.rollout_steps=512", "runtime.checkpoint_every=1",
             "label_schedule.total_labels=30", "label_schedule.initial_labels=10",
             "label_schedule.total_timesteps=4096", "runtime.rollout_worker_cpus=0.5",
             "learner.rllib.num_cpus_per_learner=0.5")  # fmt: skip
    cfg = load_config(None, isolated("learner.backend=rllib", *short, *scale))
    run = _stopped_at(cfg, 3)
    ckpt = torch.load(run.run_dir / "checkpoint.pt", weights_only=False)
    resumed = CheckedRLlibRun(cfg, resume_run_id=run.run_id)
    result = resumed.run()
    assert_same_state(resumed.restored_policy, ckpt["learner"]["learner"]["policy"], "policy")
    assert result.global_step >= 8192
    assert len(read_labels(result.run_dir / "labels")) == result.labels >= 25
    client = MlflowClient(cfg.tracking.uri)
    # logged only by a connector holding a reward model, once an update used a fitted one
    assert client.get_metric_history(result.run_id, "predicted_reward_mean")
    assert client.get_metric_history(result.run_id, "label_to_policy_latency_s")
    assert client.get_run(result.run_id).info.status == "FINISHED"


def test_more_learners_than_gpus_is_one_line_before_ray_starts(tmp_path):
    """``device=cuda`` with more Learners than the machine's GPUs: exit status 2, one line."""
    learners = torch.cuda.device_count() + 1
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    proc = subprocess.run(
        [sys.executable, "-m", "rlhp.cli", "train", "--quiet",
         "--set", "learner.backend=rllib", "--set", "device=cuda",
         "--set", f"learner.rllib.num_learners={learners}"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().startswith(
        f"rlhp: error: learner.rllib.num_learners: {learners} Learners on GPUs (device=cuda)"
    )
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "mlflow.db").exists()  # stopped before the run began
