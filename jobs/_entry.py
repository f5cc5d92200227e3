"""Shared entrypoint of the Ray jobs in this folder: one rlhp run of a preset.

``python jobs/<name>.py [--set key=value ...]`` runs the same way on a laptop, under
``ray job submit --working-dir . -- python jobs/<name>.py ...`` and under ``rlhp submit``:
inside a Ray job ``RAY_ADDRESS`` points the run at the job's cluster. Progress goes to
stdout as plain lines (job logs have no terminal for a progress bar); bad input exits with
status 2 and one line naming the field.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlhp.config import RunConfig


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    from rlhp.overrides import add_overrides_argument

    parser = argparse.ArgumentParser(description=description)
    add_overrides_argument(
        parser, help="override a config field, e.g. --set total_steps=4096 (repeatable)"
    )
    return parser.parse_args(argv)


def warn_about_relative_paths(cfg: RunConfig) -> None:
    """A Ray job runs in a temporary copy of the working dir: results written to relative
    paths vanish with it. Say so, once, with the fix."""
    if "RAY_JOB_CONFIG_JSON_ENV_VAR" not in os.environ:  # set by Ray's job supervisor
        return
    uri = cfg.tracking.uri
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        print(
            f"job: warning: tracking.uri={uri} lies in the job's temporary working dir; pass "
            "--set tracking.uri=sqlite:////ABS/PATH/mlflow.db or an http:// MLflow server",
            flush=True,
        )
    if not os.path.isabs(cfg.runtime.runs_dir):
        print(
            f"job: warning: runtime.runs_dir={cfg.runtime.runs_dir} lies in the job's "
            "temporary working dir; pass --set runtime.runs_dir=/ABS/PATH to keep run state",
            flush=True,
        )


def progress_printer(total_steps: int, every: float = 0.1) -> Callable[[Any], None]:
    """A progress callback that prints one line per ``every`` of the run (and notices).

    Job logs are read by others (``rlhp submit``, the Ray dashboard, ``kubectl logs``): the
    labellers' links, which carry their tokens, are printed only when stdout is a terminal
    (a job run by hand); a log gets their names and the tokens file."""
    from rlhp.feedback_app.links import link_lines, show_links
    from rlhp.runtime.events import Notice

    next_at = [0.0]
    links_here = show_links(sys.stdout)

    def progress(event: Any) -> None:
        if isinstance(event, Notice):
            print(f"job: {event.message}", flush=True)
            for line in link_lines(event.labeller_links) if links_here else []:
                print(f"job: {line}", flush=True)
            return
        step = event.global_step
        if step >= next_at[0] or step >= total_steps:
            next_at[0] = step + every * total_steps
            print(
                f"job: step {step}/{total_steps}  true return "
                f"{event.true_episode_return:.1f}  labels {event.labels}  "
                f"{event.env_steps_per_s:.0f} steps/s",
                flush=True,
            )

    return progress


def run_preset(preset: str, description: str, argv: list[str] | None = None) -> int:
    """Run ``preset`` with the command line's overrides; 0 on success, 2 on bad input."""
    args = parse_args(description, argv)
    from rlhp.config import load_config
    from rlhp.errors import ConfigError
    from rlhp.runtime.loop import PreferenceRun
    from rlhp.runtime.phases import PhaseClock, process_start_time
    from rlhp.runtime.termination import Terminated, stop_on_sigterm
    from rlhp.tracking.uri import redact_uri

    try:
        cfg = load_config(preset, args.overrides)
        warn_about_relative_paths(cfg)
        run = PreferenceRun(cfg, started_at=process_start_time())
        print(
            f"job: run {run.run_id}: {preset}, {cfg.learner.algo.upper()} on {cfg.env.id}, "
            f"{cfg.total_steps} steps; MLflow {redact_uri(cfg.tracking.uri)}; run dir "
            f"{run.run_dir}",
            flush=True,
        )
        with stop_on_sigterm():  # `ray job stop`: a checkpoint, the MLflow run KILLED
            result = run.run(progress_printer(cfg.total_steps))
    except ConfigError as err:
        print(f"job: error: {err}", file=sys.stderr, flush=True)
        return 2
    except Terminated as stop:
        print(f"job: stopped (SIGTERM); checkpoint saved in {run.run_dir}; `rlhp train "
              f"--resume {run.run_id}` continues it there", flush=True)  # fmt: skip
        return stop.code
    print(
        f"job: done. run {result.run_id}: {result.global_step} steps, {result.labels} labels, "
        f"recent true return {result.mean_recent_return:.1f}, evaluation return "
        f"{result.eval_return:.1f}; time: {PhaseClock.of(result.phases).summary()}",
        flush=True,
    )
    return 0
