"""Ray job: the paper's MuJoCo experiment with synthetic labels (preset
``mujoco_synthetic``: Hopper-v5, 700 labels over 1M steps; section 3.1, appendix A.1).

    ray job submit --working-dir . -- python jobs/mujoco_synthetic.py \
        --set tracking.uri=sqlite:////shared/mlflow.db --set env.id=Walker2d-v5
"""

import sys

from _entry import run_preset

if __name__ == "__main__":
    sys.exit(run_preset("mujoco_synthetic", __doc__))
