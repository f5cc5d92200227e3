"""The ``rlhp`` command.

``rlhp train [PRESET] [--set key=value ...]`` trains a policy, showing rlhp's own lines and a
progress bar (everything else goes to the run's ``train.log``; ``--verbose`` shows it all);
``rlhp config`` prints the resolved config; ``rlhp presets`` lists the presets. Bad input
prints one line naming the field and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from rlhp.errors import ConfigError
from rlhp.overrides import add_overrides_argument

if TYPE_CHECKING:
    from rlhp.config import RunConfig
    from rlhp.terminal import QuietTerminal


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "preset", nargs="?", default=None, help="preset name or YAML path (default: default)"
    )
    add_overrides_argument(p)


def _overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` overrides, plus ``--feedback human`` as ``teacher.kind=human``."""
    extra = ["teacher.kind=human"] if getattr(args, "feedback", None) == "human" else []
    return [*extra, *args.overrides]


def _cmd_presets(_: argparse.Namespace) -> int:
    from rlhp.config import preset_names

    print("\n".join(preset_names()))
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from rlhp.config import config_to_yaml, load_config

    print(config_to_yaml(load_config(args.preset, args.overrides)), end="")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    """``rlhp train``: on a quiet terminal (rlhp's lines and the progress bar; everything else
    in the run's ``train.log``) unless ``--verbose``."""
    import tempfile

    from rlhp.config import load_config
    from rlhp.terminal import QuietTerminal

    overrides = _overrides(args)
    cfg = (
        None
        if args.resume and not overrides and args.preset is None
        else load_config(args.preset, overrides)
    )
    if args.verbose:
        return _train(args, cfg, None)
    # the log lives in the temp dir until the run directory exists (bad input creates nothing)
    early = Path(tempfile.gettempdir()) / f"rlhp-train-{os.getpid()}.log"
    term = QuietTerminal(early)
    try:
        with term:
            return _train(args, cfg, term)
    except ConfigError:  # bad input: one line, and no log to keep
        if term.log_path == early:
            early.unlink(missing_ok=True)
        raise


def _train(args: argparse.Namespace, cfg: RunConfig | None, term: QuietTerminal | None) -> int:
    """Run (or resume) one run, reporting on ``term`` (``None``: the plain stdout / stderr);
    0 when done, 130 when interrupted, 1 when the run failed (the traceback is in the log)."""
    from tqdm import tqdm

    from rlhp.feedback_app.links import link_lines, show_links
    from rlhp.runtime.events import Event, Notice
    from rlhp.runtime.loop import PreferenceRun
    from rlhp.runtime.phases import PhaseClock, process_start_time
    from rlhp.runtime.termination import EXIT_STATUS as TERMINATED_STATUS
    from rlhp.runtime.termination import Terminated, stop_on_sigterm
    from rlhp.terminal import BarFigures
    from rlhp.tracking.uri import redact_uri, ui_hint

    out, err = (term.out, term.err) if term is not None else (sys.stdout, sys.stderr)
    run = PreferenceRun(
        cfg, resume_run_id=args.resume, started_at=process_start_time(), ray_during_setup=True
    )
    cfg = run.cfg
    log = run.run_dir / "train.log"
    if term is not None:
        term.move_to(log)
    teacher = run.cfg.teacher.kind
    labeler = {
        "human": "human",
        "judge": f"AI-judge ({run.cfg.teacher.judge})",
        "oracle": "synthetic",
    }
    mode = (
        f"{labeler.get(teacher, f'simulated-teacher ({teacher})')} preferences"
        if run.preferences
        else "true reward"
    )
    verb = "resuming" if args.resume else "starting"
    print(
        f"rlhp: {verb} run {run.run_id}: {cfg.learner.algo.upper()} on {cfg.env.id} from {mode}, "
        f"{cfg.total_steps} steps; run dir {run.run_dir}; MLflow {redact_uri(cfg.tracking.uri)}"
        + (f"; full log {log}" if term is not None else ""),
        file=out,
        flush=True,
    )
    bar = tqdm(total=cfg.total_steps, unit="step", dynamic_ncols=True, disable=args.quiet, file=err)
    lock = threading.Lock()

    def say(line: str) -> None:
        """One line on the terminal, above the progress bar (from any thread)."""
        with lock:
            bar.clear()
            print(line, file=out, flush=True)
            bar.refresh()

    if term is not None:
        term.watch(say)  # notable log lines (an actor died, ...) as one rlhp line each
    links_here = show_links(out)  # labellers' links (their tokens) only on a terminal
    figures = BarFigures(run.preferences)

    def progress(event: Event) -> None:
        # steps, true episode return, env steps/s; labels and predicted episode return (r_hat)
        if isinstance(event, Notice):
            say(f"rlhp: {event.message}")
            for line in link_lines(event.labeller_links) if links_here else []:
                say(f"rlhp: {line}")
            return
        bar.n = min(event.global_step, cfg.total_steps)
        postfix = figures(
            event.true_episode_return,
            event.env_steps_per_s,
            event.labels,
            event.predicted_episode_return,
        )
        with lock:
            bar.set_postfix(postfix, refresh=True)

    try:
        with stop_on_sigterm():  # kill, `ray job stop`, a pod's deletion: as Ctrl-C
            result = run.run(progress)
    except (KeyboardInterrupt, Terminated) as stop:
        bar.close()
        why = "terminated (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        print(
            f"\nrlhp: {why}; checkpoint saved. Resume with: rlhp train --resume {run.run_id}",
            file=out,
            flush=True,
        )
        return 130 if isinstance(stop, KeyboardInterrupt) else TERMINATED_STATUS
    except Exception as error:
        if term is None:
            raise
        import traceback

        traceback.print_exc()  # into the log
        bar.close()
        what = str(error).strip().splitlines()[0][:300] if str(error).strip() else ""
        print(
            f"rlhp: error: the run failed: {type(error).__name__}: {what}; the full log is "
            f"in {log}",
            file=err,
            flush=True,
        )
        return 1
    bar.close()
    print(
        f"rlhp: done. run {result.run_id}: {result.global_step} steps, {result.labels} labels, "
        f"recent true return {result.mean_recent_return:.1f}, evaluation return {result.eval_return:.1f}\n"
        f"      time: {PhaseClock.of(result.phases).summary()}\n"
        f"      watch it: {ui_hint(cfg.tracking.uri)}",
        file=out,
        flush=True,
    )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np
    import yaml

    from rlhp.checkpoints import RUN_CHECKPOINT, RunCheckpoint
    from rlhp.config import apply_override, validate_config
    from rlhp.errors import ConfigError
    from rlhp.runtime import report

    for override in args.overrides:
        if not override.strip().startswith("env."):
            raise ConfigError(
                f"--set {override}: eval changes only the environment (env.*), e.g. "
                "--set env.fixed_length_episodes=false to play whole games"
            )
    run_dir = Path(args.runs_dir) / args.run_id
    checkpoint = RunCheckpoint.load(run_dir)  # weights only: a crafted file runs no code
    if checkpoint is None:
        raise ConfigError(
            f"RUN_ID: no checkpoint at {run_dir / RUN_CHECKPOINT}; check the id and --runs-dir"
        )
    data = yaml.safe_load((run_dir / "config.yaml").read_text())
    for override in args.overrides:
        apply_override(data, override)
    cfg = validate_config(data)
    policy = report.load_policy(cfg, checkpoint.policy)
    returns = report.evaluate(cfg, policy, args.episodes)
    changed = f" ({', '.join(args.overrides)})" if args.overrides else ""
    print(
        f"rlhp: {args.episodes} episodes of {cfg.env.id}{changed}: true return "
        f"{np.mean(returns):.1f} ± {np.std(returns):.1f}"
    )
    clip = report.video(cfg, policy, run_dir / "report" / "eval-cli.mp4", steps=args.video_steps)
    print(f"rlhp: video {clip}" if isinstance(clip, Path) else f"rlhp: {clip}")
    return 0


def _cmd_label(args: argparse.Namespace) -> int:
    from rlhp.feedback_app.attach import attach
    from rlhp.feedback_app.config import is_loopback
    from rlhp.feedback_app.links import base_url, link_lines, show_links
    from rlhp.runtime.cluster import connect

    if not is_loopback(args.host) and not args.allow_remote:
        raise ConfigError(
            f"--host: {args.host} is not loopback; the run's labeller tokens protect the API, "
            "add --allow-remote to serve on it"
        )
    connect(args.address)
    server, links = attach(args.run_id, args.host, args.port)
    if show_links(sys.stdout):
        for line in link_lines(links):
            print(f"rlhp: {line}")
    else:  # a log, not a person: no tokens
        print(
            f"rlhp: labelling app at {base_url(links) or server.url()} for {', '.join(links)}; "
            "links are shown on a terminal only: each person opens the address with "
            "#token=<their token> (the run's tokens file)"
        )
    print("rlhp: Ctrl-C stops serving (the run goes on)")
    server.wait()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rlhp", description="Deep RL from human preferences on Ray."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a policy")
    _add_config_args(train)
    train.add_argument(
        "--resume", metavar="RUN_ID", help="continue this run from its last checkpoint"
    )
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--verbose",
        action="store_true",
        help="show everything the run's libraries print (Ray, MLflow, warnings) here instead "
        "of only in the run's train.log",
    )
    train.add_argument(
        "--feedback",
        choices=["human"],
        help="people label in the labelling web app (same as --set teacher.kind=human); "
        "other labelers: --set teacher.kind=oracle|stoc|mistake|myopic|skip|equal|judge",
    )
    train.set_defaults(func=_cmd_train)
    ev = sub.add_parser("eval", help="roll out a run's saved policy and record a video")
    ev.add_argument("run_id", metavar="RUN_ID")
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument(
        "--video-steps", type=int, default=300, help="length of the video (agent steps)"
    )
    ev.add_argument("--runs-dir", default="rlhp_runs")
    add_overrides_argument(
        ev,
        help="evaluate in a changed environment, e.g. --set env.fixed_length_episodes=false "
        "(Atari: whole games, not the run's fixed-length episodes); env.* only, repeatable",
    )
    ev.set_defaults(func=_cmd_eval)
    label = sub.add_parser(
        "label", help="serve the labelling web app for a running human-feedback run"
    )
    label.add_argument("run_id", metavar="RUN_ID")
    label.add_argument("--address", help="Ray cluster address (default: RAY_ADDRESS or local)")
    label.add_argument("--host", default="127.0.0.1", help="interface to bind (default loopback)")
    label.add_argument("--port", type=int, default=8001, help="TCP port (0 = any free port)")
    label.add_argument(
        "--allow-remote", action="store_true", help="allow binding to a non-loopback interface"
    )
    label.set_defaults(func=_cmd_label)
    config = sub.add_parser("config", help="print the resolved config as YAML")
    _add_config_args(config)
    config.set_defaults(func=_cmd_config)
    presets = sub.add_parser("presets", help="list the presets")
    presets.set_defaults(func=_cmd_presets)
    from rlhp.cluster.jobs_cli import add_job_commands
    from rlhp.cluster.k8s_cli import add_k8s_commands

    add_job_commands(sub)  # rlhp submit, rlhp sweep
    add_k8s_commands(sub)  # rlhp k8s submit|status|logs
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(f"rlhp: error: {err}", file=sys.stderr)
        return 2


def console() -> NoReturn:
    """The ``rlhp`` command: ``main()``, then the steps of the interpreter's exit that
    matter, and ``os._exit``.

    Those steps, in the interpreter's order: wait for non-daemon threads, run the ``atexit``
    handlers (Ray's shutdown, logging's flush, MLflow's), flush stdout and stderr. What
    ``os._exit`` skips is the teardown of the imported modules (torch's, MLflow's, Ray's C++
    finalization among them): nothing left to save, 2.6 s after a run on a 2-core machine.
    An exception out of ``main()`` takes the normal exit (its traceback, status 1)."""
    status = main()
    main_thread = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main_thread and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


if __name__ == "__main__":
    console()
