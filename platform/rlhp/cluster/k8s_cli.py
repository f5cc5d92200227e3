"""``rlhp k8s submit|status|logs``: run the jobs of ``jobs/`` as KubeRay RayJobs.

``submit`` builds a RayJob (``rlhp.cluster.k8s.build_rayjob``) for the RayCluster of
``deploy/k8s`` and creates it, or prints it with ``--dry-run``; ``status`` reads the RayJob's
``.status``; ``logs`` prints the submitter pod's logs, which follow the job driver. Bad input
and unreachable clusters are one-line errors with exit status 2 (``rlhp.cli.main``).
"""

from __future__ import annotations

import argparse
import sys

from rlhp.cluster import k8s


def _add_target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-n",
        "--namespace",
        default=k8s.DEFAULT_NAMESPACE,
        help=f"namespace of the RayJob (default: {k8s.DEFAULT_NAMESPACE})",
    )
    p.add_argument("--context", default=None, help="kubeconfig context (default: the current)")


def _cmd_submit(args: argparse.Namespace) -> int:
    k8s.check_overrides(args.job, args.overrides)
    name = args.name or (None if args.dry_run else k8s.random_name(args.job))
    image = args.image
    if image is None:  # the cluster's own image; checks that the cluster is there
        image = (
            k8s.DEFAULT_IMAGE
            if args.dry_run
            else k8s.cluster_image(args.cluster, args.namespace, context=args.context)
        )
    obj = k8s.build_rayjob(
        args.job,
        args.overrides,
        name=name,
        namespace=args.namespace,
        image=image,
        cluster=args.cluster,
    )
    if args.dry_run:
        print(k8s.to_yaml(obj), end="")
        return 0
    created = k8s.submit(obj, context=args.context)
    name, ns = created["metadata"]["name"], created["metadata"]["namespace"]
    print(
        f"rlhp: submitted RayJob {name} to RayCluster {args.cluster} in namespace {ns}\n"
        f"      status: rlhp k8s status {name} -n {ns}\n"
        f"      logs:   rlhp k8s logs {name} -n {ns} --follow"
    )
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    rows = k8s.summarize(k8s.get_rayjob(args.name, args.namespace, context=args.context))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    try:
        for chunk in k8s.logs(args.name, args.namespace, follow=args.follow, context=args.context):
            sys.stdout.write(chunk)
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 130
    return 0


def add_k8s_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``rlhp k8s`` on the ``rlhp`` parser."""
    p = sub.add_parser("k8s", help="run jobs on Kubernetes (KubeRay RayJobs)")
    k8s_sub = p.add_subparsers(dest="k8s_command", required=True)

    submit = k8s_sub.add_parser(
        "submit",
        help="submit a job as a RayJob",
        description="Jobs: "
        + "; ".join(f"{k} ({v.description})" for k, v in k8s.JOBS.items())
        + ". The job runs on the RayCluster of deploy/k8s, logging to MLflow at "
        + k8s.TRACKING_URI
        + ".",
    )
    submit.add_argument("job", metavar="JOB", help=f"one of: {', '.join(k8s.JOBS)}")
    submit.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field of the job, e.g. --set total_steps=200000 (repeatable)",
    )
    _add_target_args(submit)
    submit.add_argument(
        "--image",
        default=None,
        help="image of the submitter pod, which runs `ray job submit` (default: the "
        f"RayCluster's image; {k8s.DEFAULT_IMAGE} with --dry-run); the job runs in the "
        "RayCluster's image",
    )
    submit.add_argument(
        "--cluster",
        default=k8s.DEFAULT_CLUSTER,
        help=f"RayCluster to run on (default: {k8s.DEFAULT_CLUSTER})",
    )
    submit.add_argument("--name", default=None, help="RayJob name (default: JOB-<random>)")
    submit.add_argument(
        "--dry-run", action="store_true", help="print the RayJob as YAML; create nothing"
    )
    submit.set_defaults(func=_cmd_submit)

    status = k8s_sub.add_parser("status", help="show a RayJob's status")
    status.add_argument("name", metavar="NAME", help="RayJob name (printed by submit)")
    _add_target_args(status)
    status.set_defaults(func=_cmd_status)

    logs = k8s_sub.add_parser("logs", help="print a RayJob's driver logs")
    logs.add_argument("name", metavar="NAME", help="RayJob name (printed by submit)")
    logs.add_argument("-f", "--follow", action="store_true", help="stream until the job ends")
    _add_target_args(logs)
    logs.set_defaults(func=_cmd_logs)
