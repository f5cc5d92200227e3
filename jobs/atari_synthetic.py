"""Ray job: the paper's Atari experiment with synthetic labels (preset ``atari_synthetic``:
5,500 labels, 500 up front, disagreement queries; section 3.1, appendix A.2).

    ray job submit --working-dir . -- python jobs/atari_synthetic.py \
        --set env.id=ALE/Breakout-v5 --set tracking.uri=sqlite:////shared/mlflow.db
"""

import sys

from _entry import run_preset

if __name__ == "__main__":
    sys.exit(run_preset("atari_synthetic", __doc__))
