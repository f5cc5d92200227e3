"""``rlhp submit`` and ``rlhp sweep``.

``rlhp submit [--address URL] [--working-dir DIR] [--no-wait] -- python jobs/<name>.py ...``
sends a Ray job and follows its logs (exit status: 0 when the job SUCCEEDED). ``rlhp sweep
SPEC.yaml`` runs a grid of rlhp runs with Ray Tune on the connected (or a local) cluster.
Ray and MLflow are imported inside the commands, so ``rlhp --help`` stays fast.
"""

from __future__ import annotations

import argparse
import shlex
import sys

from rlhp.overrides import add_overrides_argument


def _cmd_submit(args: argparse.Namespace) -> int:
    from rlhp.cluster import jobs

    entrypoint = jobs.entrypoint_command(
        args.entrypoint[1:] if args.entrypoint[:1] == ["--"] else args.entrypoint
    )
    runtime_env = jobs.build_runtime_env(args.working_dir, args.runtime_env, args.env)
    client, url = jobs.connect_client(args.address, args.allow_insecure_token)
    job_id = jobs.submit(client, entrypoint, runtime_env, args.submission_id)
    if args.no_wait:
        print(job_id)
        return 0
    print(f"rlhp: submitted job {job_id} to {url}: {entrypoint}", flush=True)

    def write(text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    return jobs.follow(client, job_id, write)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from rlhp.cluster.sweep import run_sweep
    from rlhp.cluster.sweep_report import summary_rows_markdown

    again = shlex.join(
        ["rlhp", "sweep", args.spec, *(["--address", args.address] if args.address else []),
         *(a for o in args.overrides for a in ("--set", o))]
    )  # fmt: skip
    try:
        result = run_sweep(
            args.spec, args.overrides, args.address, say=lambda line: print(line, flush=True)
        )
    except KeyboardInterrupt:  # the second Ctrl-C
        print(
            f"\nrlhp: sweep stopped at once; its trials continue from their last periodic "
            f"checkpoints with: {again}",
            flush=True,
        )
        return 130
    print(summary_rows_markdown(result.rows), end="")
    finished = sum(r.status == "FINISHED" for r in result.rows)
    where = f"parent run {result.parent_run_id} (summary/ artifacts) in {result.tracking_uri}"
    if result.stopped:
        print(
            f"rlhp: sweep stopped: {finished}/{len(result.rows)} trials finished; the others "
            f"continue with: {again}; {where}"
        )
        return 130
    print(f"rlhp: sweep done: {finished}/{len(result.rows)} trials finished; {where}")
    return 0 if result.ok else 1


def add_job_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``rlhp submit`` and ``rlhp sweep`` on the ``rlhp`` parser."""
    submit = sub.add_parser(
        "submit",
        help="submit a Ray job (e.g. a jobs/ entrypoint) and follow it",
        description="Submit ENTRYPOINT to the Ray cluster at --address / RAY_ADDRESS "
        "(http://HEAD:8265) with the cluster's token (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
        "~/.ray/auth_token), follow its logs, and exit 0 when it SUCCEEDED (1 FAILED, "
        "3 STOPPED). The token goes only over https or to this machine unless "
        "--allow-insecure-token. Ctrl-C asks whether to stop the job.",
    )
    submit.add_argument("--address", help="job server URL (default: RAY_ADDRESS)")
    submit.add_argument(
        "--working-dir",
        default=".",
        help="directory uploaded as the job's working dir (default: .)",
    )
    submit.add_argument("--runtime-env", metavar="YAML", help="a runtime_env YAML file")
    submit.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="env var for the job"
    )
    submit.add_argument("--submission-id", help="job id to use (default: generated)")
    submit.add_argument(
        "--allow-insecure-token",
        action="store_true",
        help="send the Ray token over plain http to a host other than this machine (it is "
        "refused otherwise: use https:// or a tunnel to 127.0.0.1)",
    )
    submit.add_argument(
        "--no-wait", action="store_true", help="print the job id and return after submitting"
    )
    submit.add_argument(
        "entrypoint",
        nargs=argparse.REMAINDER,
        metavar="-- ENTRYPOINT",
        help="command to run, e.g. -- python jobs/mujoco_synthetic.py --set total_steps=4096",
    )
    submit.set_defaults(func=_cmd_submit)

    sweep = sub.add_parser(
        "sweep",
        help="run a grid of rlhp runs with Ray Tune (envs x seeds x labels x queries)",
        description="Run every trial of SPEC (see jobs/sweeps/) as a full rlhp run with its "
        "own placement group; MLflow gets a parent run with the summary table and plot.",
    )
    sweep.add_argument("spec", metavar="SPEC.yaml")
    add_overrides_argument(
        sweep, help="config override for every trial, after the spec's set (repeatable)"
    )
    sweep.add_argument(
        "--address", help="Ray cluster (default: runtime.ray_address, RAY_ADDRESS, or local)"
    )
    sweep.set_defaults(func=_cmd_sweep)
