"""Failure injection at the os level for the durability tests (POSIX, Linux ``/proc``).

``Faults(monkeypatch).fail("replace", errno.EIO, when=..., times=2)`` makes the next two
``os.replace`` calls that match ``when`` raise ``OSError(EIO)`` instead of running; every
other call goes through unchanged. The stores are real and are not mocked: they call
``os.open / os.write / os.fsync / os.replace / os.ftruncate`` as usual, and only those calls
fail, the way a full disk (ENOSPC) or a failing one (EIO) makes them fail.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def fd_path(fd: int) -> str:
    """The path an open file descriptor refers to."""
    return os.readlink(f"/proc/self/fd/{fd}")


def is_dir_fd(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


@dataclass
class Rule:
    name: str
    errno: int
    when: Callable[..., bool]
    times: int | None  # None: until cleared
    fired: int = 0

    def active(self) -> bool:
        return self.times is None or self.fired < self.times


class Faults:
    """Installs wrappers around ``os`` functions for one test (undone by monkeypatch)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.rules: list[Rule] = []
        self.real: dict[str, Callable[..., Any]] = {}

    def fail(self, name: str, errno: int, when: Callable[..., bool], times: int | None = 1) -> Rule:
        """Make ``os.<name>(*args)`` raise OSError(errno) when ``when(*args)`` holds, for the
        next ``times`` matching calls. A failing ``write`` first writes half of its bytes
        (what a short write followed by ENOSPC leaves in the file)."""
        rule = Rule(name, errno, when, times)
        self.rules.append(rule)
        if name not in self.real:
            real = self.real[name] = getattr(os, name)
            self.monkeypatch.setattr(os, name, self._wrapper(name, real))
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def _wrapper(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            for rule in self.rules:
                if rule.name == name and rule.active() and rule.when(*args):
                    rule.fired += 1
                    if name == "write":
                        real(args[0], bytes(args[1])[: len(args[1]) // 2])
                    raise OSError(rule.errno, os.strerror(rule.errno))
            return real(*args, **kwargs)

        return wrapped


def named(suffix: str) -> Callable[..., bool]:
    """A ``when`` for path-taking calls: the first path argument ends with ``suffix``."""
    return lambda path, *rest: str(path).endswith(suffix)


def fd_named(suffix: str) -> Callable[..., bool]:
    """A ``when`` for descriptor-taking calls: the file's path ends with ``suffix``."""
    return lambda fd, *rest: isinstance(fd, int) and fd_path(fd).endswith(suffix)


def fd_dir(directory: Path) -> Callable[..., bool]:
    """A ``when`` for ``fsync``: the descriptor is ``directory`` itself."""
    return lambda fd, *rest: is_dir_fd(fd) and fd_path(fd) == str(directory)
