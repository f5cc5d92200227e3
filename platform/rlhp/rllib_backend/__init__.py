"""``learner.backend: rllib``: the policy process as an RLlib ``Algorithm`` (new API stack).

The rest of the preference loop is rlhp's own: the segment buffer, labelling, the reward
trainer, the label store, MLflow and ``rlhp eval``. RLlib supplies sampling on EnvRunners
and the PPO update; rlhp plugs in at three points:

- ``module.RlhpActorCritic``: the RLModule is rlhp's own actor-critic network, so a policy
  trained here is evaluated, recorded and served exactly as one trained by ``rlhp``;
- ``connectors.LearnedReward``: a Learner connector before GAE that replaces every batch
  reward by the reward ensemble's r_hat (the pattern of RLlib's curiosity examples);
- ``segments.SegmentCallback``: cuts the EnvRunners' episodes into labelling segments and
  pushes them to the segment buffer actor.

``process.RLlibPolicy`` builds the Algorithm from a ``RunConfig`` and runs one iteration
per driver iteration. This package imports Ray; the pure core never imports it.
"""
