"""Ray job: a run labelled by people (preset ``mujoco_human``: Hopper-v5, 750 human labels;
Christiano et al. 2017, section 3.1). The job prints one link per labeller; the labelling
app runs in the run's feedback actor on the driver's node (the head node in a Ray job).

    ray job submit --working-dir . -- python jobs/human_feedback.py \
        --set tracking.uri=sqlite:////shared/mlflow.db \
        --set feedback.host=0.0.0.0 --set feedback.tokens_file=/etc/rlhp/feedback/tokens

Without a tokens file the tokens are generated into the run directory; binding beyond
loopback needs one. ``--set feedback.serve=ray_serve`` serves the app through Ray Serve
instead; ``rlhp label RUN_ID`` serves it from any machine that reaches the cluster.
"""

import sys

from _entry import run_preset

if __name__ == "__main__":
    sys.exit(run_preset("mujoco_human", __doc__))
