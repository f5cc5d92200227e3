"""Env tests use real MuJoCo and real ALE, seeded; keep ALE's console output quiet."""

from __future__ import annotations

from ale_py import ALEInterface, LoggerMode

ALEInterface.setLoggerMode(LoggerMode.Error)
