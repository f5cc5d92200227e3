#!/bin/bash
# usage: pong_ab.sh TAG PLATFORM_DIR; a Pong true-reward run (atari_synthetic, 20480 steps), timed
tag=$1; plat=$2
d=$(mktemp -d /tmp/pab-XXXX); cd $d
s=$(date +%s.%N)
PYTHONPATH=$plat python -m rlhp.cli train atari_synthetic --quiet --set runtime.reward=true_reward --set total_steps=20480 --set runtime.eval_episodes=1 --set tracking.uri=sqlite:///$d/mlflow.db --set runtime.runs_dir=$d/runs > out.log 2>&1
e=$(date +%s.%N)
ph=$(sqlite3 $d/mlflow.db "select replace(replace(key,'time/',''),'_s','')||'='||round(value,1) from latest_metrics where key like 'time/%' order by key" | tr '\n' ' ')
sps=$(sqlite3 $d/mlflow.db "select round(value,1) from latest_metrics where key='perf/env_steps_per_s'")
printf "%-6s wall=%.1f sps_last=%s load=%s | %s\n" $tag $(echo "$e - $s" | bc) "$sps" "$(cut -d' ' -f1 /proc/loadavg)" "$ph" | tee -a /tmp/pong_ab.results
python -c "import rlhp,sys; print(rlhp.__file__)" >> /tmp/pong_ab.results
rm -rf $d
