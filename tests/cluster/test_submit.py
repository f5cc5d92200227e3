"""Ray jobs on a real two-node local cluster with token authentication.

The fixture starts a head (``ray start --head``, no CPUs of its own) and a second node
(``ray start --address``) in their own temp dir, on free ports and with their own token,
so that a run's rollout worker can only be placed on the second node. The test submits
the MuJoCo job with ``rlhp submit`` and with the plain ``ray job submit`` CLI, waits for
both, and reads the runs back from MLflow. Teardown ends only the processes this fixture
started (never ``ray stop``: other Ray instances on the machine stay up).
"""

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

ROOT = Path(__file__).resolve().parents[2]


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def node_ports(flags: list[str]) -> list[str]:
    return [f"--{flag}={port}" for flag, port in zip(flags, free_ports(len(flags)), strict=True)]


NODE_PORTS = ["node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
              "dashboard-agent-grpc-port", "runtime-env-agent-port", "metrics-export-port"]  # fmt: skip


def session_processes(sids: set[int]) -> list[int]:
    """Pids of live processes in the given sessions (``ray start`` children stay in the
    session of the ``ray start`` process we launched with start_new_session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[3]) in sids and fields[0] != "Z":  # field 6 (session), state
                pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def cluster():
    tmp = Path(tempfile.mkdtemp(prefix="rlhp-ray-", dir="/tmp"))
    token = secrets.token_hex(32)
    (tmp / "token").write_text(token)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
    env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(tmp / "token")}
    gcs, dashboard, client = free_ports(3)
    common = ["--block", "--disable-usage-stats", "--node-ip-address=127.0.0.1"]
    head = ["ray", "start", "--head", *common, f"--port={gcs}", "--include-dashboard=true",
            f"--dashboard-port={dashboard}", f"--ray-client-server-port={client}",
            f"--temp-dir={tmp}", "--num-cpus=0", *node_ports(NODE_PORTS)]  # fmt: skip
    # the second node keeps its own temp dir, as a separate machine would: nodes sharing one
    # session dir delete each other's job working dirs when their workers exit
    worker = ["ray", "start", *common, f"--address=127.0.0.1:{gcs}", "--num-cpus=2",
              f"--temp-dir={tmp}/node2", *node_ports(NODE_PORTS)]  # fmt: skip
    procs = []
    url = f"http://127.0.0.1:{dashboard}"
    auth = {"Authorization": f"Bearer {token}"}

    def alive_nodes() -> int:
        try:
            r = requests.get(f"{url}/nodes?view=summary", headers=auth, timeout=2)
            return sum(n["raylet"]["state"] == "ALIVE" for n in r.json()["data"]["summary"])
        except (requests.RequestException, ValueError, KeyError):
            return 0

    try:
        for cmd, nodes in ((head, 1), (worker, 2)):
            log = (tmp / f"node{nodes}.log").open("w")
            procs.append(
                subprocess.Popen(
                    cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
            deadline = time.time() + 90
            while alive_nodes() < nodes:
                assert time.time() < deadline, (tmp / f"node{nodes}.log").read_text()[-3000:]
                time.sleep(0.5)
        yield {"url": url, "token": token, "token_path": tmp / "token", "env": env}
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)  # `ray start --block` stops its node's processes
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
        time.sleep(1)
        for pid in session_processes({p.pid for p in procs}):  # stragglers of our sessions
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)


def client_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
    return env | {"PYTHONUNBUFFERED": "1"} | extra


def rlhp(*args, env, timeout=240, cwd=ROOT):
    return subprocess.run(
        [sys.executable, "-m", "rlhp.cli", *args],
        capture_output=True, text=True, timeout=timeout, cwd=cwd, env=env,
    )  # fmt: skip


def short_run(tmp_path: Path, experiment: str) -> list[str]:
    """Overrides for a tiny mujoco_synthetic run (Hopper-v5) that records into tmp_path."""
    sets = [
        "total_steps=1024", "env.num_envs=2", "learner.rollout_steps=512",
        "env.episode_steps=200", "runtime.eval_episodes=1", "runtime.checkpoint_every=100",
        "label_schedule.total_labels=12", "label_schedule.initial_labels=6",
        f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.experiment={experiment}",
        f"runtime.runs_dir={tmp_path}/runs",
    ]  # fmt: skip
    return [arg for s in sets for arg in ("--set", s)]


@pytest.mark.slow
def test_rlhp_submit_and_ray_job_submit_on_two_nodes(cluster, tmp_path):
    MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_experiments()  # create the schema once
    entry = ["python", "jobs/mujoco_synthetic.py"]
    ours = subprocess.Popen(
        [sys.executable, "-m", "rlhp.cli", "submit", "--working-dir", ".", "--",
         *entry, *short_run(tmp_path, "via-rlhp-submit")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=client_env(RAY_ADDRESS=cluster["url"], RAY_AUTH_TOKEN=cluster["token"]),
    )  # fmt: skip
    plain = subprocess.Popen(
        ["ray", "job", "submit", "--address", cluster["url"], "--working-dir", ".", "--",
         *entry, *short_run(tmp_path, "via-ray-job-submit")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=client_env(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(cluster["token_path"])),
    )  # fmt: skip
    out, err = ours.communicate(timeout=240)
    plain_out, plain_err = plain.communicate(timeout=240)
    assert ours.returncode == 0, out[-3000:] + err[-3000:]
    assert plain.returncode == 0, plain_out[-3000:] + plain_err[-3000:]
    assert "job: done. run " in out and "SUCCEEDED" in out.splitlines()[-1]
    assert "job: done. run " in plain_out and "succeeded" in plain_out

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    for experiment, log in (("via-rlhp-submit", out), ("via-ray-job-submit", plain_out)):
        (run,) = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
        assert run.info.status == "FINISHED"
        assert f"job: done. run {run.info.run_id}" in log
        assert run.data.params["env.id"] == "Hopper-v5"  # the mujoco_synthetic preset
        assert run.data.params["label_schedule.total_labels"] == "12"
        assert {"true_episode_return", "labels", "eval/true_return_mean"} <= set(run.data.metrics)
        assert (tmp_path / "runs" / run.info.run_id / "checkpoint.pt").exists()


@pytest.mark.slow
def test_no_wait_and_ctrl_c_stops_the_job(cluster, tmp_path):
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(
        cluster["url"], headers={"Authorization": f"Bearer {cluster['token']}"}
    )
    env = client_env(RAY_ADDRESS=cluster["url"], RAY_AUTH_TOKEN=cluster["token"])
    (tmp_path / "hello.py").write_text("print('hello from the job')\n")
    proc = rlhp("submit", "--no-wait", "--working-dir", str(tmp_path), "--", "hello.py", env=env)
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip()
    deadline = time.time() + 60
    while str(jobs.get_job_status(job_id).value) not in ("SUCCEEDED", "FAILED"):
        assert time.time() < deadline
        time.sleep(0.5)
    assert str(jobs.get_job_status(job_id).value) == "SUCCEEDED"
    assert "hello from the job" in jobs.get_job_logs(job_id)

    (tmp_path / "sleep.py").write_text(
        "import time\nprint('sleeping', flush=True)\ntime.sleep(300)\n"
    )
    follow = subprocess.Popen(
        [sys.executable, "-m", "rlhp.cli", "submit", "--working-dir", str(tmp_path), "--",
         "python", "sleep.py"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env, cwd=tmp_path,
        # a suite started in the background (`cmd &` without job control) hands SIGINT down
        # as ignored, and Python keeps ignoring it; this test plays a terminal user's Ctrl-C,
        # so the child gets the default disposition
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    seen = []
    for line in follow.stdout:  # follows the logs until the job prints
        seen.append(line)
        if "sleeping" in line:
            break
    follow.send_signal(signal.SIGINT)
    out, err = follow.communicate("y\n", timeout=60)
    text = "".join(seen) + out
    job_id = text.split("submitted job ")[1].split()[0]
    assert follow.returncode == 3, text + err
    assert f"stop job {job_id}? [y/N]" in text and f"rlhp: job {job_id} STOPPED" in text
    assert str(jobs.get_job_status(job_id).value) == "STOPPED"


@pytest.mark.slow
def test_missing_or_wrong_token_is_one_line(cluster, tmp_path):
    entry = ["--", "python", "jobs/mujoco_synthetic.py"]
    no_token = client_env(RAY_ADDRESS=cluster["url"], HOME=str(tmp_path))  # no ~/.ray/auth_token
    proc = rlhp("submit", *entry, env=no_token)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"rlhp: error: RAY_AUTH_TOKEN: the cluster at {cluster['url']} requires a token and none "
        "was found; set RAY_AUTH_TOKEN (print it on the head with `ray get-auth-token`), point "
        "RAY_AUTH_TOKEN_PATH at a file holding it, or write it to ~/.ray/auth_token"
    )
    proc = rlhp("submit", *entry, env=no_token | {"RAY_AUTH_TOKEN": "not-the-token"})
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"rlhp: error: RAY_AUTH_TOKEN: the cluster at {cluster['url']} rejected the token from "
        "RAY_AUTH_TOKEN; use the head's token (`ray get-auth-token` on the head node)"
    )


def test_unreachable_or_missing_address_is_one_line(tmp_path):
    entry = ["--", "python", "jobs/mujoco_synthetic.py"]
    (port,) = free_ports(1)  # nothing listens there
    proc = rlhp("submit", *entry, env=client_env(RAY_ADDRESS=f"http://127.0.0.1:{port}"))
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        f"rlhp: error: RAY_ADDRESS: cannot reach a Ray job server at http://127.0.0.1:{port} ("
    )
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "`ray start --head`" in proc.stderr

    proc = rlhp("submit", *entry, env=client_env())
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "rlhp: error: RAY_ADDRESS: no Ray cluster given; set RAY_ADDRESS=http://HEAD:8265 "
        "(the head's dashboard) or pass --address"
    )


def node_cpus(cluster) -> dict[str, float]:
    """Node id -> CPUs of every alive node (the head has none: work lands on node 2)."""
    auth = {"Authorization": f"Bearer {cluster['token']}"}
    summary = requests.get(f"{cluster['url']}/nodes?view=summary", headers=auth, timeout=5)
    nodes = summary.json()["data"]["summary"]
    return {n["raylet"]["nodeId"]: float(n["raylet"].get("resourcesTotal", {}).get("CPU", 0.0))
            for n in nodes if n["raylet"]["state"] == "ALIVE"}  # fmt: skip


# last in this module: its Algorithm tears down EnvRunners on the shared cluster
@pytest.mark.slow
def test_rllib_backend_samples_on_the_second_node(cluster, tmp_path):
    """learner.backend=rllib as a Ray job: the EnvRunners sit on the node with the CPUs (not
    the head, where the driver and its local Learner run), and the run finishes."""
    MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_experiments()  # create the schema once
    job = rlhp(
        "submit", "--working-dir", ".", "--", "python", "jobs/mujoco_synthetic.py",
        *short_run(tmp_path, "rllib-two-nodes"), "--set", "learner.backend=rllib",
        "--set", "learner.algo=ppo",  # the preset's TRPO runs on rlhp's backend only
        env=client_env(RAY_ADDRESS=cluster["url"], RAY_AUTH_TOKEN=cluster["token"]),
        timeout=400,
    )  # fmt: skip
    assert job.returncode == 0, job.stdout[-3000:] + job.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    (run,) = client.search_runs([client.get_experiment_by_name("rllib-two-nodes").experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["learner.backend"] == "rllib"
    cpus = node_cpus(cluster)
    runners = run.data.tags["rlhp.env_runner_nodes"].split(",")
    assert runners and all(cpus.get(node, 0.0) > 0 for node in runners), (runners, cpus)
    assert len(cpus) == 2 and min(cpus.values()) == 0.0  # the head node has no CPU
