"""``rlhp k8s submit|status|logs``: the RayJobs it builds, and its errors without a cluster.

No API server exists here, and none is faked: the objects are checked as built
(``--dry-run``; their CRD validation is in test_k8s_manifests.py), and the failure paths run
against a missing kubeconfig and a kubeconfig whose server refuses connections. Each error
must be one line naming the problem and the fix, exit status 2, no traceback.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlhp.cli import main
from rlhp.cluster import k8s


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 2, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rlhp: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


@pytest.fixture
def no_kubeconfig(tmp_path, monkeypatch):
    """No kubeconfig anywhere: KUBECONFIG names a missing file, HOME has no .kube."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing-kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return tmp_path / "missing-kubeconfig"


@pytest.fixture
def unreachable_kubeconfig(tmp_path, monkeypatch):
    """A valid kubeconfig whose API server (127.0.0.1:1) refuses every connection."""
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "gone",
                        "cluster": {
                            "server": "https://127.0.0.1:1",
                            "insecure-skip-tls-verify": True,
                        },
                    }
                ],
                "users": [{"name": "me", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "me"}}],
                "current-context": "gone",
            }
        )
    )
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    return path


def dry_run(capsys, *argv: str) -> dict:
    code, out, err = run(capsys, "k8s", "submit", *argv, "--dry-run")
    assert code == 0 and err == "", err
    return yaml.safe_load(out)


# ---- the objects submit builds ------------------------------------------------------------


def test_dry_run_prints_the_rayjob_for_each_job(capsys, no_kubeconfig):
    """--dry-run needs no cluster and no kubeconfig."""
    for job, spec in k8s.JOBS.items():
        obj = dry_run(capsys, job)
        assert obj == k8s.build_rayjob(job)
        assert obj["apiVersion"] == "ray.io/v1" and obj["kind"] == "RayJob"
        assert obj["metadata"]["generateName"] == job.replace("_", "-") + "-"
        argv = shlex.split(obj["spec"]["entrypoint"])
        assert argv[:2] == ["python", spec.script]
        assert argv[2 : 2 + len(spec.args)] == list(spec.args)
        sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
        assert sets[:2] == [f"tracking.uri={k8s.TRACKING_URI}", f"runtime.runs_dir={k8s.RUNS_DIR}"]


def test_the_jobs_are_the_scripts_of_jobs_dir():
    assert {k: v.script for k, v in k8s.JOBS.items()} == {
        "mujoco_synthetic": "jobs/mujoco_synthetic.py",
        "atari_synthetic": "jobs/atari_synthetic.py",
        "human_feedback": "jobs/human_feedback.py",
        "sweep": "jobs/sweep.py",
    }
    assert k8s.JOBS["sweep"].args == ("jobs/sweeps/atari_paper.yaml",)


def test_user_overrides_come_last_and_are_quoted(capsys, no_kubeconfig):
    obj = dry_run(
        capsys,
        "human_feedback",
        "--set",
        "total_steps=20000",
        "--set",
        "tracking.run_name=people label Hopper",
    )
    argv = shlex.split(obj["spec"]["entrypoint"])
    sets = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    assert sets == [
        f"tracking.uri={k8s.TRACKING_URI}",
        f"runtime.runs_dir={k8s.RUNS_DIR}",
        "feedback.host=0.0.0.0",
        f"feedback.tokens_file={k8s.FEEDBACK_TOKENS}",
        "total_steps=20000",
        "tracking.run_name=people label Hopper",  # one argument, spaces and all
    ]


def test_job_names_in_any_spelling(capsys, no_kubeconfig):
    for spelling in ("mujoco-synthetic", "jobs/mujoco_synthetic.py"):
        assert dry_run(capsys, spelling) == k8s.build_rayjob("mujoco_synthetic")


def test_options_reach_the_object(capsys, no_kubeconfig):
    obj = dry_run(
        capsys,
        "sweep",
        "--name",
        "paper-sweep",
        "-n",
        "team-a",
        "--image",
        "ghcr.io/x/rlhp:cuda",
        "--cluster",
        "gpu-pool",
    )
    assert obj["metadata"]["name"] == "paper-sweep" and "generateName" not in obj["metadata"]
    assert obj["metadata"]["namespace"] == "team-a"
    assert obj["spec"]["clusterSelector"] == {"ray.io/cluster": "gpu-pool"}
    assert obj["spec"]["submissionMode"] == "K8sJobMode"
    pod = obj["spec"]["submitterPodTemplate"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/x/rlhp:cuda"
    # the submitter meets the restricted Pod Security Standard the namespace enforces
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert {"cpu", "memory"} <= container["resources"]["limits"].keys()


def test_random_names_are_valid_and_distinct():
    names = {k8s.random_name("human_feedback") for _ in range(20)}
    assert len(names) == 20
    for name in names:
        assert name.startswith("human-feedback-")
        assert k8s.check_name(name, "NAME") == name


def test_status_summarizes_the_rayjob_status():
    obj = k8s.build_rayjob("mujoco_synthetic", name="mujoco-synthetic-abcde")
    assert dict(k8s.summarize(obj))["job status"] == "PENDING"
    obj["status"] = {
        "jobStatus": "RUNNING",
        "jobDeploymentStatus": "Running",
        "rayClusterName": "rlhp",
        "jobId": "mujoco-synthetic-abcde-x1",
        "dashboardURL": "rlhp-head-svc.rlhp.svc.cluster.local:8265",
        "startTime": "2026-01-01T00:00:00Z",
    }
    rows = dict(k8s.summarize(obj))
    assert rows["job status"] == "RUNNING"
    assert rows["deployment status"] == "Running"
    assert rows["ray cluster"] == "rlhp"
    assert rows["ray job id"] == "mujoco-synthetic-abcde-x1"
    assert "ended" not in rows


def test_the_cli_starts_without_importing_kubernetes():
    code = (
        "import sys, rlhp.cli; rlhp.cli.build_parser(); "
        "print('kubernetes' in sys.modules, 'rlhp.config' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]


# ---- bad input: one line, exit 2 ----------------------------------------------------------


def test_unknown_job(capsys, no_kubeconfig):
    code, out, err = run(capsys, "k8s", "submit", "cartpole", "--dry-run")
    assert_one_line_error(code, out, err, "JOB: unknown job 'cartpole'", "mujoco_synthetic")


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("total_steps", "--set 'total_steps': expected key=value"),
        ("=3", "--set '=3': expected key=value"),
        ("learner..algo=trpo", "expected key=value with a dotted config field"),
        ("learner.algoo=trpo", "learner.algoo: unknown setting"),
        ("total_steps=-5", "total_steps:"),
    ],
)
def test_bad_set(capsys, no_kubeconfig, override, needle):
    code, out, err = run(capsys, "k8s", "submit", "mujoco_synthetic", "--set", override)
    assert_one_line_error(code, out, err, needle)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["submit", "sweep", "--dry-run", "--name", "Paper_Sweep"], "--name: 'Paper_Sweep'"),
        (["submit", "sweep", "--dry-run", "-n", "Team A"], "--namespace: 'Team A'"),
        (["submit", "sweep", "--dry-run", "--cluster", "Big"], "--cluster: 'Big'"),
        (["submit", "sweep", "--dry-run", "--image", " "], "--image: empty"),
        (["status", "x" * 64], "is not a valid Kubernetes name"),
        (["logs", "UPPER"], "NAME: 'UPPER' is not a valid Kubernetes name"),
    ],
)
def test_bad_names(capsys, no_kubeconfig, argv, needle):
    code, out, err = run(capsys, "k8s", *argv)
    assert_one_line_error(code, out, err, needle)


@pytest.mark.parametrize(
    "argv",
    [
        ["submit", "mujoco_synthetic"],
        ["submit", "atari_synthetic", "--image", "rlhp:cpu"],
        ["status", "mujoco-synthetic-abcde"],
        ["logs", "mujoco-synthetic-abcde", "--follow"],
    ],
)
def test_no_kubeconfig(capsys, no_kubeconfig, argv):
    code, out, err = run(capsys, "k8s", *argv)
    assert_one_line_error(
        code,
        out,
        err,
        "kubeconfig: no usable Kubernetes configuration",
        str(no_kubeconfig),
        "set KUBECONFIG",
    )


def test_unknown_context(capsys, unreachable_kubeconfig):
    code, out, err = run(capsys, "k8s", "status", "x", "--context", "elsewhere")
    assert_one_line_error(code, out, err, "elsewhere", "kubectl config get-contexts")


@pytest.mark.parametrize(
    "argv",
    [
        ["submit", "mujoco_synthetic"],  # reads the RayCluster's image first
        ["submit", "human_feedback", "--image", "rlhp:cpu", "--name", "hf-1"],
        ["status", "mujoco-synthetic-abcde"],
        ["logs", "mujoco-synthetic-abcde"],
        ["logs", "mujoco-synthetic-abcde", "--follow"],
    ],
)
def test_unreachable_api_server(capsys, unreachable_kubeconfig, argv):
    code, out, err = run(capsys, "k8s", *argv)
    assert_one_line_error(
        code,
        out,
        err,
        "kubernetes: cannot reach the API server at https://127.0.0.1:1",
        "kubectl cluster-info",
    )


def test_errors_from_the_installed_command(no_kubeconfig):
    """The console script, as a user runs it: stderr one line, exit status 2."""
    rlhp = Path(sys.executable).with_name("rlhp")
    cmd = [str(rlhp)] if rlhp.exists() else [sys.executable, "-m", "rlhp.cli"]
    out = subprocess.run(
        [*cmd, "k8s", "status", "some-job"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert out.stderr.startswith("rlhp: error: kubeconfig:") and out.stderr.count("\n") == 1
