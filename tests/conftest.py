"""Shared pytest set-up: headless rendering for MuJoCo, and a fixed torch thread count."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
