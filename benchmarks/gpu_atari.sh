#!/usr/bin/env bash
# The GPU check of the RLlib backend (issue "cluster-scale Atari", item 4): RLlib APPO on
# Pong from synthetic preference labels on one GPU machine, under 10 minutes; prints env
# steps/s, Learner gradient steps/s, GPU utilization and the return reached.
#
#   bash benchmarks/gpu_atari.sh                 # one large GPU, 16 CPUs: ~9 minutes
#   MINUTES=3 RUNNERS=1 AGGREGATORS=1 EXTRA="--set label_schedule.initial_labels=20 \
#       --set label_schedule.pretrain_epochs=2" bash benchmarks/gpu_atari.sh   # a smoke run
#
# Layout: the Learner in the driver on the GPU (learner.rllib.num_learners=0, device=auto
# takes cuda when one is visible), AGGREGATORS aggregator actors building the train
# batches (learned reward included), RUNNERS EnvRunners of 8 ale-py envs each, the reward
# trainer on the same GPU. APPO settings: the atari_synthetic_appo preset (RLlib's tuned
# Pong example: train batch 500, value coefficient 1.0, entropy 0.01, each batch drawn
# twice, target sync every 2).
# The run stops after MINUTES of wall time (SIGINT: it checkpoints and is marked KILLED);
# the figures come from its MLflow metrics and nvidia-smi's samples, written to OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${MINUTES:-8}
RUNNERS=${RUNNERS:-11}
AGGREGATORS=${AGGREGATORS:-2}
STEPS=${STEPS:-10000000}
OUT=${OUT:-benchmarks/results/gpu-atari/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
export MUJOCO_GL=egl PYTHONUNBUFFERED=1

SMI=""
if command -v nvidia-smi > /dev/null && nvidia-smi -L > "$OUT/gpus.txt" 2>&1; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used \
        --format=csv,noheader,nounits -lms 1000 > "$OUT/gpu_samples.csv" &
    SMI=$!
fi
START=$(date +%s)
set +e
timeout --signal=INT --kill-after=60 "$((MINUTES * 60))" rlhp train atari_synthetic_appo --quiet \
    --set learner.rllib.num_aggregator_actors_per_learner="$AGGREGATORS" \
    --set runtime.num_rollout_workers="$RUNNERS" --set runtime.rollout_worker_cpus=1 \
    --set total_steps="$STEPS" --set runtime.eval_episodes=3 \
    --set tracking.uri="sqlite:///$OUT/mlflow.db" --set tracking.experiment=gpu-atari \
    --set runtime.runs_dir="$OUT/runs" ${EXTRA:-} > "$OUT/train.out" 2>&1
STATUS=$?
set -e
END=$(date +%s)
[ -n "$SMI" ] && kill "$SMI" 2> /dev/null || true
echo "rlhp train exited with $STATUS after $((END - START)) s (124: stopped at ${MINUTES} min, checkpointed)"
tail -3 "$OUT/train.out"
python - "$OUT" "$START" "$END" <<'PY'
"""The figures of one gpu_atari.sh run, from its MLflow store and nvidia-smi's samples."""
import csv
import statistics
import sys
from datetime import datetime
from pathlib import Path

from mlflow import MlflowClient

out, start, end = Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
client = MlflowClient(f"sqlite:///{out.resolve()}/mlflow.db")
(run,) = client.search_runs([client.get_experiment_by_name("gpu-atari").experiment_id])
rid = run.info.run_id


def history(name):
    return sorted(client.get_metric_history(rid, name), key=lambda m: m.step)


sps = [m.value for m in history("env_steps_per_s")]
trained = history("env_steps_trained")
returns = history("true_episode_return")
evals = history("eval/true_return_mean")
labels = history("labels")
loop = (trained[0].timestamp / 1e3, trained[-1].timestamp / 1e3) if trained else (start, end)
gradient_steps = (trained[-1].value - trained[0].value) / 500 if len(trained) > 1 else 0.0
print(f"run {rid} on {run.data.params.get('env.id')}: {run.info.status}")
print(f"env steps: {int(returns[-1].step) if returns else 0}, "
      f"env steps/s median {statistics.median(sps) if sps else float('nan'):.0f} "
      f"over {len(sps)} iterations")
print(f"Learner gradient steps/s: {gradient_steps / max(loop[1] - loop[0], 1e-9):.2f} "
      f"(train batch 500, each batch drawn twice)")
samples = out / "gpu_samples.csv"
if samples.exists():
    util = []
    for row in csv.reader(samples.open()):
        t = datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
        if loop[0] <= t <= loop[1]:
            util.append(float(row[1]))
    if util:
        print(f"GPU utilization during the loop: mean {statistics.mean(util):.0f} %, "
              f"median {statistics.median(util):.0f} % ({len(util)} samples)")
else:
    print("GPU utilization: no nvidia-smi on this machine (CPU-only run)")
if returns:
    first, last = returns[0].value, returns[-1].value
    print(f"true episode return (mean of recent episodes): first {first:.1f}, last {last:.1f}")
print(f"eval return: {evals[-1].value:.1f}" if evals else "eval return: none (stopped first)")
print(f"labels: {int(labels[-1].value) if labels else 0}")
PY
