"""Ray job: a sweep (``rlhp sweep``) run on the cluster itself, e.g. the paper's Atari grid.

    ray job submit --working-dir . -- python jobs/sweep.py jobs/sweeps/atari_paper.yaml \
        --set tracking.uri=http://mlflow:5000

Each trial is a full rlhp run in its own placement group; MLflow gets a parent run with a
child per trial, the summary table and the return-vs-labels plot. Exit status: 0 when every
trial finished, 1 when one failed, 2 on bad input (one line naming the key), 130 when
stopped with Ctrl-C (the same command continues it).
"""

import sys

from rlhp.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
