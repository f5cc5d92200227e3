"""``write_atomic`` is the one way rlhp writes a file that must survive a power loss: tmp file,
fsync, rename, fsync of the directory. Checked on the helper, on the reward model's ``save``,
and over the package's source (no other ``torch.save`` to a path, no other rename)."""

from __future__ import annotations

import ast
import errno
import os
from pathlib import Path

import pytest
import torch

import rlhp
from fault_injection import Faults, fd_named, named
from rlhp.data._durable import write_atomic
from rlhp.preference.config import RewardModelConfig
from rlhp.preference.ensemble import RewardEnsemble
from rlhp.preference.networks import InputSpec

PACKAGE = Path(rlhp.__file__).parent
# the modules that rename files themselves, and why
RENAMES_ALLOWED = {
    "data/_durable.py": "the helper itself",
    "data/label_store.py": "rotation: the active file is renamed to its sealed name",
    "feedback_app/queue_journal.py": "a damaged journal file is renamed aside",
}


def record_calls(monkeypatch) -> list[tuple[str, str]]:
    """(call, path) of every fsync / replace, in order."""
    calls: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        calls.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst) -> None:
        calls.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return calls


def test_write_atomic_fsyncs_the_file_then_renames_then_fsyncs_the_directory(
    tmp_path, monkeypatch
) -> None:
    calls = record_calls(monkeypatch)
    write_atomic(tmp_path / "f.bin", b"hello")
    target = str(tmp_path / "f.bin")
    assert calls == [("fsync", target + ".tmp"), ("replace", target), ("fsync", str(tmp_path))]
    assert (tmp_path / "f.bin").read_bytes() == b"hello"


def test_a_failed_write_atomic_leaves_the_old_file(tmp_path, monkeypatch) -> None:
    (tmp_path / "f.bin").write_bytes(b"old")
    Faults(monkeypatch).fail("write", errno.ENOSPC, fd_named(".tmp"))
    with pytest.raises(OSError, match="No space left"):
        write_atomic(tmp_path / "f.bin", b"new contents")
    assert (tmp_path / "f.bin").read_bytes() == b"old"
    assert not list(tmp_path.glob("*.tmp"))


def test_the_reward_model_file_is_written_atomically_and_durably(tmp_path, monkeypatch) -> None:
    ensemble = RewardEnsemble(InputSpec((3,), (1,), None), RewardModelConfig(ensemble_size=2))
    calls = record_calls(monkeypatch)
    ensemble.save(tmp_path / "reward_model.pt")
    target = str(tmp_path / "reward_model.pt")
    assert calls == [("fsync", target + ".tmp"), ("replace", target), ("fsync", str(tmp_path))]
    again = RewardEnsemble.load(tmp_path / "reward_model.pt")
    for a, b in zip(ensemble.members, again.members, strict=True):
        for p, q in zip(a.parameters(), b.parameters(), strict=True):
            assert torch.equal(p, q)
    Faults(monkeypatch).fail("replace", errno.EIO, named(".tmp"))
    with pytest.raises(OSError):
        ensemble.save(tmp_path / "reward_model.pt")
    assert RewardEnsemble.load(tmp_path / "reward_model.pt").version == ensemble.version


def test_no_module_writes_run_state_around_write_atomic() -> None:
    """Run checkpoints, the reward model, the trainer's state: ``torch.save`` only ever
    writes into ``write_atomic``'s file object, and only the listed modules rename."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = path.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text())
        lambda_args = {
            a.arg for node in ast.walk(tree) if isinstance(node, ast.Lambda) for a in node.args.args
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else None
            if name == "torch" and node.func.attr == "save":
                target = node.args[1] if len(node.args) > 1 else None
                if not (isinstance(target, ast.Name) and target.id in lambda_args):
                    problems.append(f"{where}:{node.lineno}: torch.save to a path")
            renames = name == "os" and node.func.attr in ("replace", "rename")
            if renames and where not in RENAMES_ALLOWED:
                problems.append(f"{where}:{node.lineno}: os.{node.func.attr}")
            if node.func.attr == "replace" and "tmp" in ast.unparse(owner).lower():
                problems.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    assert not problems, "write these with rlhp.data._durable.write_atomic: " + "; ".join(problems)
