"""rlhp: deep reinforcement learning from human preferences on Ray.

Christiano et al. 2017 ("Deep RL from Human Preferences") with PPO and TRPO over GAE
(Schulman et al. 2016) as policy optimizers. The pure core (``algos``, ``nn``,
``preference``, ``data``, ``envs``) imports no Ray; ``actors`` and ``runtime`` wrap it.
"""

__version__ = "0.1.0"
