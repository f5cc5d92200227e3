"""The feedback section: human mode turns clips on; unsafe or contradictory settings are one
clear line each."""

import pytest

from rlhp.cli import main
from rlhp.config import load_config


def test_human_mode_records_clips_unless_told_otherwise():
    assert load_config("default", ["teacher.kind=human"]).env.render_clips is True
    assert load_config("default", []).env.render_clips is False


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["feedback.host=0.0.0.0"], "feedback.host: binding the labelling app to '0.0.0.0'"),
        (["runtime.reward=true_reward"], "runtime.reward: teacher.kind=human labels preferences"),
        (["env.render_clips=false"], "env.render_clips: teacher.kind=human shows clips to people"),
        (["feedback.overlap=0"], "feedback.overlap: Input should be greater than or equal to 1"),
        (["feedback.tokens_file=/nonexistent/tokens"], "feedback.tokens_file: no file"),
    ],
)
def test_bad_feedback_settings_are_one_line(capsys, overrides, message):
    args = ["train", "--feedback", "human"]
    for o in overrides:
        args += ["--set", o]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"rlhp: error: {message}") and "\n" not in err, err


def test_configs_written_with_feedback_mode_still_load():
    """A run directory from before teacher.kind=human (``--resume`` reads its config.yaml)."""
    assert load_config("default", ["feedback.mode=human"]).teacher.kind == "human"
    assert load_config("default", ["feedback.mode=synthetic"]).teacher.kind == "oracle"
    assert main(["train", "--set", "feedback.mode=robots"]) == 2
