"""AI feedback as a labeler: ``teacher.kind=judge`` loads the judge that ``teacher.judge``
names (a module or a file), its answers become labels, and every way a judge can be wrong
is one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlhp.cli import main
from rlhp.data.records import SegmentRecord
from rlhp.errors import ConfigError
from rlhp.preference.config import TeacherConfig
from rlhp.preference.judges import absolute_judge_ref, load_judge
from rlhp.preference.teachers import make_teacher

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "judges.py"


def segment(cos_theta: float, seed: int = 0) -> SegmentRecord:
    obs = np.zeros((10, 3), np.float32)
    obs[:, 0] = cos_theta
    return SegmentRecord(
        f"s{cos_theta}-{seed}", "r", "Pendulum-v1", 0, 0, 0, obs,
        np.zeros((10, 1), np.float32), np.zeros(10, np.float32),
    )  # fmt: skip


def test_a_judge_file_labels_pairs_through_the_teacher_factory():
    cfg = TeacherConfig(kind="judge", judge=f"{EXAMPLES}:pendulum_upright")
    labeler = make_teacher(cfg)
    up, down = segment(0.9), segment(-0.9)
    assert labeler.label([(up, down), (down, up), (up, segment(0.9, 1))]) == [1.0, 0.0, None]
    assert labeler.source == "judge:pendulum_upright" and labeler.name == "pendulum_upright"


def test_a_judge_by_module_name_and_a_tie_margin(tmp_path, monkeypatch):
    (tmp_path / "my_judges.py").write_text("def unsure(left, right):\n    return 0.6\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    pair = (segment(0.1), segment(0.2))
    assert make_teacher(TeacherConfig(kind="judge", judge="my_judges:unsure")).label([pair]) == [
        1.0
    ]
    cfg = TeacherConfig(kind="judge", judge="my_judges:unsure", judge_tie_margin=0.2)
    assert make_teacher(cfg).label([pair]) == [0.5]  # within 0.2 of 0.5: a tie


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("no_colon", "is not `package.module:function`"),
        ("missing/file.py:f", "no file 'missing/file.py'"),
        ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
        (f"{EXAMPLES}:no_such_function", "has no function 'no_such_function'"),
    ],
)
def test_a_judge_that_does_not_load_is_one_line(ref, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_judge(ref)
    assert "\n" not in str(err.value)


def test_a_judge_file_that_raises_on_import_is_one_line(tmp_path):
    (tmp_path / "bad.py").write_text("raise RuntimeError('no API key')\n")
    with pytest.raises(ConfigError, match="RuntimeError: no API key"):
        load_judge(f"{tmp_path / 'bad.py'}:judge")


def test_relative_judge_files_are_made_absolute_for_the_actors(tmp_path, monkeypatch):
    (tmp_path / "j.py").write_text("def f(a, b):\n    return 1.0\n")
    monkeypatch.chdir(tmp_path)
    assert absolute_judge_ref("j.py:f") == f"{tmp_path / 'j.py'}:f"
    assert absolute_judge_ref("pkg.mod:f") == "pkg.mod:f"


def test_judge_settings_are_checked_before_a_run(capsys):
    assert main(["train", "--set", "teacher.kind=judge"]) == 2
    assert "teacher.judge: teacher.kind=judge needs the judge" in capsys.readouterr().err
    assert main(["train", "--set", "teacher.judge=operator:truth"]) == 2
    assert "teacher.judge: set only with teacher.kind=judge" in capsys.readouterr().err


def hopper_segment(height: float, angle: float, velocity: float) -> SegmentRecord:
    obs = np.zeros((10, 11), np.float32)
    obs[:, 0], obs[:, 1], obs[:, 5] = height, angle, velocity
    return SegmentRecord(
        f"h{height}-{angle}-{velocity}", "r", "Hopper-v5", 0, 0, 0, obs,
        np.zeros((10, 3), np.float32), np.zeros(10, np.float32),
    )  # fmt: skip


def test_the_graded_hopper_judge_ranks_two_leaning_clips_where_the_threshold_one_cannot():
    threshold = load_judge(f"{EXAMPLES}:hopper_upright_and_forward")
    leaning_less, leaning_more = hopper_segment(0.9, 0.4, 1.0), hopper_segment(0.9, 1.2, 1.0)
    assert threshold(leaning_less, leaning_more) == pytest.approx(0.5)  # neither is upright
    graded = make_teacher(
        TeacherConfig(kind="judge", judge=f"{EXAMPLES}:hopper_graded_upright_and_forward")
    )
    assert graded.label([(leaning_less, leaning_more), (leaning_more, leaning_less)]) == [1.0, 0.0]
    # still "and move forward": standing upright and still loses to hopping upright
    standing, hopping = hopper_segment(1.25, 0.0, 0.0), hopper_segment(1.2, 0.1, 2.0)
    assert graded.label([(hopping, standing)]) == [1.0]
