"""Flat ``Box`` observations for array-in, array-out agents (cleanrl's ``ppo.py``, SB3 ``MlpPolicy``).

Every id has a ``-Flat`` twin (``ImageInversion-Shapes-v1`` -> ``ImageInversion-Shapes-Flat-v1``)
whose observation is Gymnasium's :func:`gymnasium.spaces.flatten` of the Dict observation: the
keys in sorted order, ``Box`` parts raveled, ``MultiDiscrete`` parts one-hot, ``MultiBinary``
parts as they are, all as ``float64``. ``action_mask`` sorts first, so in the flat vector

* ``obs[:action_space.n]`` is the action mask (1 where an action is valid), for
  ImageInversion and PromptRewrite; the wrappers expose it as ``mask_slice``;
* PromptRewriteTokens has no mask (every token is valid): ``mask_slice`` is ``None``.

``gym.make_vec`` on a flat id builds the family's native vector env and flattens its batch, so
it still sends one backend call per step.

>>> import gymnasium as gym
>>> import prompt_gym
>>> env = gym.make("prompt_gym/ImageInversion-Shapes-Easy-Flat-v1")
>>> obs, info = env.reset(seed=0)
>>> obs.shape, env.get_wrapper_attr("mask_slice")
((1072,), slice(0, 9, None))
>>> bool((obs[env.get_wrapper_attr("mask_slice")] == env.unwrapped.action_masks()).all())
True
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.envs.registration import load_env_creator
from gymnasium.wrappers import FlattenObservation
from gymnasium.wrappers.vector import FlattenObservation as FlattenVectorObservation

MASK_KEY = "action_mask"


def mask_slice_of(space: spaces.Dict) -> slice | None:
    """Where the action mask lies in ``spaces.flatten(space, obs)``; ``None`` without a mask.

    >>> s = spaces.Dict({"b": spaces.Box(0, 1, (3,)), "action_mask": spaces.MultiBinary(4)})
    >>> mask_slice_of(s)
    slice(0, 4, None)
    """
    start = 0
    for key, sub in space.spaces.items():
        size = spaces.flatdim(sub)
        if key == MASK_KEY:
            return slice(start, start + size)
        start += size
    return None


class FlatObservation(FlattenObservation):
    """:class:`~gymnasium.wrappers.FlattenObservation` that says where the mask is.

    Attributes:
        mask_slice: The action mask's slice of the flat observation, or ``None``.
    """

    def __init__(self, env: gym.Env) -> None:
        """Flatten ``env``'s Dict observation."""
        super().__init__(env)
        self.mask_slice = mask_slice_of(env.observation_space)

    def action_masks(self) -> np.ndarray:
        """The valid actions (bool), as MaskablePPO asks for them."""
        return self.env.unwrapped.action_masks()


class FlatVectorObservation(FlattenVectorObservation):
    """The vector twin of :class:`FlatObservation`: ``obs[:, mask_slice]`` is the batch's mask."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        """Flatten ``env``'s batched Dict observation."""
        super().__init__(env)
        self.mask_slice = mask_slice_of(env.single_observation_space)


def make_flat(entry_point: str, **kwargs: Any) -> gym.Env:
    """Build the env class at ``entry_point`` with ``kwargs`` and flatten its observation."""
    return FlatObservation(load_env_creator(entry_point)(**kwargs))


def make_flat_vec(vector_entry_point: str, **kwargs: Any) -> gym.vector.VectorEnv:
    """Build the native vector env at ``vector_entry_point`` and flatten its observations."""
    return FlatVectorObservation(load_env_creator(vector_entry_point)(**kwargs))
