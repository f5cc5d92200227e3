"""Config loading and the one-line errors users see for bad input."""

import subprocess
import sys

import pytest

from rlhp.algos.trainer import OnPolicyTrainer
from rlhp.config import apply_override, load_config, preset_names
from rlhp.errors import ConfigError


def test_presets_load_and_overrides_apply():
    assert {"default", "mujoco_true_reward"} <= set(preset_names())
    cfg = load_config(
        "default", ["learner.algo=trpo", "learner.trpo.max_kl=0.02", "policy.hidden_sizes=[32, 32]"]
    )
    assert cfg.learner.algo == "trpo" and cfg.learner.trpo.max_kl == 0.02
    assert cfg.policy.hidden_sizes == (32, 32)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (["learner.ppo.learning_rate=-0.1"], "learner.ppo.learning_rate"),
        (["lerner.algo=trpo"], "lerner"),
        (["learner.algo=sac"], "learner.algo"),
        (["total_steps=0"], "total_steps"),
    ],
)
def test_invalid_fields_are_named(overrides, field):
    with pytest.raises(ConfigError, match=rf"^{field}: "):
        load_config(None, overrides)


def test_unknown_env_id_is_named():
    with pytest.raises(
        ConfigError, match=r"^env\.id: unknown environment 'Hoper-v5'; did you mean .*Hopper-v5"
    ):
        OnPolicyTrainer(load_config(None, ["env.id=Hoper-v5"]))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("env=ALE/Pong-v5", "env: is a group of settings, not one value (got 'ALE/Pong-v5'); "
         "set its fields one by one, e.g. env.id=ALE/Pong-v5"),
        ("learner=ppo", "learner: is a group of settings, not one value (got 'ppo'); "
         "set its fields one by one, e.g. learner.FIELD=VALUE"),
    ],
)  # fmt: skip
def test_a_group_given_one_value_names_its_fields(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert str(err.value).startswith(message)


def test_bad_override_syntax():
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_override({}, "learner.algo")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--set", "env.id=NoSuchEnv-v0"],
            "rlhp: error: env.id: unknown environment 'NoSuchEnv-v0'",
        ),
        (
            ["--set", "env.id=CartPole-v1", "--set", "policy.kind=mlp_gaussian"],
            "rlhp: error: policy.kind: 'mlp_gaussian' needs a continuous (Box) action space",
        ),
        (["--set", "learner.ppo.learning_rate=-3e-4"], "rlhp: error: learner.ppo.learning_rate: "),
    ],
)
def test_cli_errors_are_one_line_without_traceback(args, message, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "rlhp.cli", "train", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), proc.stderr
    assert "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []  # refused before any run, store or directory exists


def test_a_preset_extends_another_and_merges_mapping_by_mapping(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("extends: mujoco_synthetic\nlearner: {gamma: 0.9, ppo: {ent_coef: 0.02}}\n")
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nlearner: {ppo: {clip_coef: 0.3}}\ntotal_steps: 5000\n")
    cfg = load_config(str(child))
    assert cfg.env.id == "Hopper-v5"  # from mujoco_synthetic, two levels up
    assert cfg.label_schedule.total_labels == 700
    assert cfg.learner.gamma == 0.9 and cfg.learner.ppo.ent_coef == 0.02  # from base.yaml
    assert cfg.learner.ppo.clip_coef == 0.3 and cfg.total_steps == 5000  # the child's own
    # the shipped variant presets are their parent plus only what they change
    trpo, ppo = load_config("mujoco_synthetic"), load_config("mujoco_synthetic_ppo")
    assert trpo.learner.algo == "trpo" and trpo.learner.gamma == 0.995  # A.1's optimizer
    assert ppo.learner.algo == "ppo" and ppo.learner.gamma == 0.99
    assert trpo.env == ppo.env and trpo.label_schedule == ppo.label_schedule
    rl = load_config("mujoco_true_reward")
    same_task = rl.env.model_copy(update={"segment_steps": trpo.env.segment_steps}) == trpo.env
    assert rl.runtime.reward == "true_reward" and same_task and rl.learner == trpo.learner
    assert load_config("mujoco_true_reward_ppo").learner == ppo.learner
    appo = load_config("atari_synthetic_appo")
    assert (appo.learner.backend, appo.learner.algo, appo.learner.appo.train_batch) == (
        "rllib", "appo", 500)  # fmt: skip
    assert appo.reward_model == load_config("atari_synthetic").reward_model


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"a.yaml": "extends: b.yaml\n", "b.yaml": "extends: a.yaml\n"}, r"^extends: .*cycle"),
        ({"a.yaml": "extends: ./a.yaml\n"}, r"^extends: .*cycle"),
        ({"a.yaml": "extends: mujoco_synthetc\n"}, r"^preset: unknown preset 'mujoco_synthetc'"),
        ({"a.yaml": "extends: [default]\n"}, r"^extends: in preset .* must name one preset"),
    ],
)
def test_bad_extends_is_one_line_naming_the_field(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(str(tmp_path / "a.yaml"))
