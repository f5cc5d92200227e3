"""The ``rlhp`` command.

``rlhp train [PRESET] [--set key=value ...]`` trains a policy; ``rlhp config`` prints the
resolved config; ``rlhp presets`` lists the presets. Bad input prints one line naming the
field and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlhp.errors import ConfigError


def add_overrides_argument(
    p: argparse.ArgumentParser,
    help: str = "override a config field, e.g. --set learner.algo=trpo (repeatable)",
) -> None:
    """``--set KEY=VALUE`` (repeatable) into ``args.overrides``: every command and job that
    takes config overrides spells them the same way."""
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "preset", nargs="?", default=None, help="preset name or YAML path (default: default)"
    )
    add_overrides_argument(p)


def _overrides(args: argparse.Namespace) -> list[str]:
    """``--set`` overrides, plus ``--feedback human`` as ``feedback.mode=human``."""
    extra = [f"feedback.mode={args.feedback}"] if getattr(args, "feedback", None) else []
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
    from tqdm import tqdm

    from rlhp.config import load_config
    from rlhp.runtime.loop import PreferenceRun

    overrides = _overrides(args)
    cfg = (
        None
        if args.resume and not overrides and args.preset is None
        else load_config(args.preset, overrides)
    )
    run = PreferenceRun(cfg, resume_run_id=args.resume)
    cfg = run.cfg
    mode = (
        ("human preferences" if run.human else "synthetic preferences")
        if run.preferences
        else "true reward"
    )
    verb = "resuming" if args.resume else "starting"
    print(
        f"rlhp: {verb} run {run.run_id}: {cfg.learner.algo.upper()} on {cfg.env.id} from {mode}, "
        f"{cfg.total_steps} steps; run dir {run.run_dir}; MLflow {cfg.tracking.uri}"
    )
    bar = tqdm(total=cfg.total_steps, unit="step", dynamic_ncols=True, disable=args.quiet)

    def progress(m: dict[str, float]) -> None:
        # steps, true episode return, env steps/s; labels and predicted episode return (r_hat)
        if "message" in m:
            bar.write(f"rlhp: {m['message']}")
            return
        bar.n = min(int(m["global_step"]), cfg.total_steps)
        postfix = {"ret": f"{m['true_episode_return']:.1f}", "sps": f"{m['env_steps_per_s']:.0f}"}
        if run.preferences:
            postfix |= {
                "labels": f"{m['labels']:.0f}",
                "pred_ret": f"{m.get('predicted_episode_return', float('nan')):.1f}",
            }
        bar.set_postfix(postfix, refresh=True)

    try:
        result = run.run(progress)
    except KeyboardInterrupt:
        bar.close()
        print(
            f"\nrlhp: interrupted; checkpoint saved. Resume with: rlhp train --resume {run.run_id}"
        )
        return 130
    bar.close()
    print(
        f"rlhp: done. run {result.run_id}: {result.global_step} steps, {result.labels} labels, "
        f"recent true return {result.mean_recent_return:.1f}, evaluation return {result.eval_return:.1f}\n"
        f"      watch it: mlflow ui --backend-store-uri {cfg.tracking.uri}   (then open http://127.0.0.1:5000)"
    )
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    import yaml

    from rlhp.config import validate_config
    from rlhp.errors import ConfigError
    from rlhp.runtime import report

    run_dir = Path(args.runs_dir) / args.run_id
    if not (run_dir / "checkpoint.pt").exists():
        raise ConfigError(
            f"RUN_ID: no checkpoint at {run_dir / 'checkpoint.pt'}; check the id and --runs-dir"
        )
    cfg = validate_config(yaml.safe_load((run_dir / "config.yaml").read_text()))
    state = torch.load(run_dir / "checkpoint.pt", weights_only=False)
    policy = report.load_policy(cfg, state["learner"]["learner"]["policy"])
    returns = report.evaluate(cfg, policy, args.episodes)
    print(
        f"rlhp: {args.episodes} episodes of {cfg.env.id}: true return {np.mean(returns):.1f} ± {np.std(returns):.1f}"
    )
    clip = report.video(cfg, policy, run_dir / "report" / "eval-cli.mp4", steps=args.video_steps)
    print(f"rlhp: video {clip}" if isinstance(clip, Path) else f"rlhp: {clip}")
    return 0


def _cmd_label(args: argparse.Namespace) -> int:
    from rlhp.feedback_app.attach import attach
    from rlhp.feedback_app.config import is_loopback
    from rlhp.runtime.cluster import connect

    if not is_loopback(args.host) and not args.allow_remote:
        raise ConfigError(
            f"--host: {args.host} is not loopback; the run's labeller tokens protect the API, "
            "add --allow-remote to serve on it"
        )
    connect(args.address)
    server, links = attach(args.run_id, args.host, args.port)
    for name, link in links.items():
        print(f"rlhp: labelling app for {name}: {link}")
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
        "--feedback",
        choices=["synthetic", "human"],
        help="who labels: the synthetic teacher, or people in the labelling web app "
        "(same as --set feedback.mode=...)",
    )
    train.set_defaults(func=_cmd_train)
    ev = sub.add_parser("eval", help="roll out a run's saved policy and record a video")
    ev.add_argument("run_id", metavar="RUN_ID")
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument(
        "--video-steps", type=int, default=300, help="length of the video (agent steps)"
    )
    ev.add_argument("--runs-dir", default="rlhp_runs")
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


if __name__ == "__main__":
    sys.exit(main())
