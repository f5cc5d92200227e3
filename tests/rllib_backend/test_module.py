"""rlhp's actor-critic as an RLModule: the train forward pass hands PPO's and APPO's value
call the values of the same batch, so a shared CNN trunk runs once per minibatch."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from rlhp.nn import PolicyConfig
from rlhp.rllib_backend.module import RlhpActorCritic


@pytest.mark.parametrize(
    ("obs_space", "act_space"),
    [
        (gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(6)),
        (gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), gym.spaces.Box(-1, 1, (2,))),
    ],
    ids=["cnn", "mlp"],
)
def test_train_forward_values_equal_the_value_call(obs_space, act_space):
    torch.manual_seed(0)
    module = RlhpActorCritic(
        observation_space=obs_space,
        action_space=act_space,
        model_config={"policy": PolicyConfig().model_dump(mode="json"), "env_id": "test"},
    )
    obs = torch.as_tensor(np.stack([obs_space.sample() for _ in range(8)]))
    batch = {Columns.OBS: obs}
    out = module.forward_train(batch)
    values = module.compute_values(batch, embeddings=out[Columns.EMBEDDINGS])
    torch.testing.assert_close(values, module.compute_values(batch), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(
        out[Columns.ACTION_DIST_INPUTS],
        module.forward_exploration(batch)[Columns.ACTION_DIST_INPUTS],
        rtol=1e-5,
        atol=1e-6,
    )
    assert values.shape == (8,)
