"""Environment factories, the paper's environment changes and clip rendering (no Ray).

- ``make_vector_env``: a gymnasium ``VectorEnv`` (SAME_STEP autoreset) for any id; Atari
  through ale-py's native vector env, everything else through a lean sync vector env.
- ``SegmentCutter``: fixed-length segments (``rlhp.data.records.SegmentRecord``).
- ``ClipRenderer`` / ``record_policy_video`` (``rlhp.envs.render``): browser-playable clips;
  imported lazily by users since they pull in PyAV and OpenGL.
"""

from rlhp.envs.config import EnvConfig
from rlhp.envs.factory import check_env_id, make_vector_env, segment_length
from rlhp.envs.segments import SegmentCutter

__all__ = ["EnvConfig", "SegmentCutter", "check_env_id", "make_vector_env", "segment_length"]
