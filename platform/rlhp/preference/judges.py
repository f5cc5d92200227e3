"""AI feedback as a labeler (seed section 2.4): load the judge that ``teacher.judge`` names.

A judge is any callable ``fn(left, right) -> float | None`` over two ``SegmentRecord``s,
returning its probability that the left clip is better (or None to abstain); it can read
the observations, the actions or the rendered state of the clips, call a model, or ask a
service. ``teacher.judge`` names it as ``package.module:function`` (importable on every
node) or ``path/to/file.py:function`` (a file beside the run, e.g. ``examples/``).
``CallableJudgeLabeler`` turns its answers into labels.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

from rlhp.data.records import SegmentRecord
from rlhp.errors import ConfigError
from rlhp.preference.config import TeacherConfig
from rlhp.preference.labelers import CallableJudgeLabeler

Judge = Callable[[SegmentRecord, SegmentRecord], "float | None"]


def load_judge(ref: str) -> Judge:
    """The callable ``ref`` names, or ConfigError saying in one line what is wrong."""
    where, sep, attr = ref.rpartition(":")
    if not sep or not where or not attr:
        raise ConfigError(
            f"teacher.judge: {ref!r} is not `package.module:function` or `file.py:function`"
        )
    if where.endswith(".py"):
        path = Path(where)
        if not path.is_file():
            raise ConfigError(f"teacher.judge: no file {where!r} (from {Path.cwd()})")
        spec = importlib.util.spec_from_file_location(f"rlhp_judge_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as err:  # the user's file: say which and why, in one line
            raise ConfigError(
                f"teacher.judge: loading {where!r} failed: {type(err).__name__}: {err}"
            ) from None
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise ConfigError(f"teacher.judge: cannot import {where!r}: {err}") from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ConfigError(f"teacher.judge: {where!r} has no function {attr!r}")
    return fn


def absolute_judge_ref(ref: str) -> str:
    """``ref`` with a relative ``file.py`` made absolute from here (the driver's working
    directory), so that actors started elsewhere load the same file."""
    where, _, attr = ref.rpartition(":")
    if where.endswith(".py") and not Path(where).is_absolute() and Path(where).is_file():
        return f"{Path(where).resolve()}:{attr}"
    return ref


def judge_labeler(cfg: TeacherConfig) -> CallableJudgeLabeler:
    """The labeler of ``teacher.kind=judge``: the loaded judge behind the tie margin."""
    assert cfg.judge is not None  # TeacherConfig requires it for kind=judge
    name = cfg.judge.rpartition(":")[2]
    return CallableJudgeLabeler(load_judge(cfg.judge), name=name, tie_margin=cfg.judge_tie_margin)
