"""Stable-Baselines3 ``VecEnv`` over a native vector env: same batching, SB3's API.

SB3 differs from Gymnasium's vector API: ``reset()`` returns observations only, ``step`` returns
``(obs, rewards, dones, infos)`` with a list of info dicts, and a finished sub-env is reset in the
same step, its last observation in ``infos[i]["terminal_observation"]`` and
``infos[i]["TimeLimit.truncated"]`` set when it was truncated. ``env_method("action_masks")``
serves MaskablePPO.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices

from prompt_gym.envs.vector import PromptVectorEnv


def _stack(obs_list: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {key: np.stack([obs[key] for obs in obs_list]) for key in obs_list[0]}


class SB3VecEnv(VecEnv):
    """Expose a :class:`~prompt_gym.envs.vector.PromptVectorEnv` to Stable-Baselines3.

    Args:
        venv: The native vector env (``gym.make_vec(id, num_envs=N)`` gives one), or an id.
        num_envs: Sub-envs when ``venv`` is an id.
        **kwargs: Env keyword arguments when ``venv`` is an id.

    Example:
        >>> import prompt_gym
        >>> venv = SB3VecEnv("ImageInversion-Shapes-v0", num_envs=2)
        >>> venv.reset()["target"].shape[0]
        2
    """

    def __init__(self, venv: PromptVectorEnv | str, num_envs: int = 8, **kwargs: Any) -> None:
        if isinstance(venv, str):
            venv = gym.make_vec(
                venv, num_envs=num_envs, vectorization_mode="vector_entry_point", **kwargs
            )
        venv = venv.unwrapped if hasattr(venv, "unwrapped") else venv
        if not isinstance(venv, PromptVectorEnv):
            raise ValueError(
                f"SB3VecEnv needs a prompt-gym native vector env, got {type(venv).__name__}"
            )
        self.venv = venv
        self.render_mode = venv.render_mode
        super().__init__(venv.num_envs, venv.single_observation_space, venv.single_action_space)
        self._actions: np.ndarray | None = None
        self._seeds: list[int | None] = [None] * self.num_envs

    def reset(self) -> dict[str, np.ndarray]:
        """Reset every sub-env (with the seeds given to :meth:`seed`, once) and return observations."""
        obs_list = []
        for i in range(self.num_envs):
            obs, info = self.venv.reset_one(i, seed=self._seeds[i])
            self.reset_infos[i] = info
            obs_list.append(obs)
        self._seeds = [None] * self.num_envs
        return _stack(obs_list)

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions for :meth:`step_wait`."""
        self._actions = np.asarray(actions)

    def step_wait(
        self,
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """One backend call for all sub-envs; finished sub-envs are reset in the same step."""
        if self._actions is None:
            raise RuntimeError("step_async() must be called before step_wait()")
        actions, self._actions = self._actions, None  # step_some checks there is one per env
        outcomes = self.venv.step_some(actions, np.ones(self.num_envs, dtype=bool))
        obs_list, infos = [], []
        rewards = np.zeros(self.num_envs, dtype=np.float32)
        dones = np.zeros(self.num_envs, dtype=bool)
        for i, (obs, reward, terminated, truncated, info) in enumerate(outcomes):
            info = dict(info)
            rewards[i], dones[i] = reward, terminated or truncated
            if dones[i]:
                info["terminal_observation"] = obs
                info["TimeLimit.truncated"] = truncated and not terminated
                obs, self.reset_infos[i] = self.venv.reset_one(i)
            obs_list.append(obs)
            infos.append(info)
        return _stack(obs_list), rewards, dones, infos

    def action_masks(self) -> np.ndarray:
        """``bool (num_envs, n_actions)`` of the current valid actions."""
        return np.stack([core.action_mask() for core in self.venv.cores]).astype(bool)

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed sub-env ``i`` with ``seed + i`` at the next :meth:`reset`."""
        if seed is None:
            return [None] * self.num_envs
        self._seeds = [seed + i for i in range(self.num_envs)]
        return list(self._seeds)

    def close(self) -> None:
        """Close the vector env."""
        self.venv.close()

    def get_images(self) -> Sequence[np.ndarray | None]:
        """A frame per sub-env."""
        return [core.render() for core in self.venv.cores]

    def _targets(self, indices: VecEnvIndices) -> list[Any]:
        return [self.venv.cores[i] for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """An attribute of each selected sub-env's core (``render_mode`` from the vector env)."""
        if attr_name == "render_mode":
            return [self.render_mode for _ in self._get_indices(indices)]
        return [getattr(core, attr_name) for core in self._targets(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute on each selected core."""
        for core in self._targets(indices):
            setattr(core, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a core method; ``action_masks`` returns each sub-env's bool mask."""
        return [
            getattr(core, method_name)(*method_args, **method_kwargs)
            for core in self._targets(indices)
        ]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Sub-envs are cores, never wrapped."""
        return [False for _ in self._get_indices(indices)]

    def _get_indices(self, indices: VecEnvIndices) -> Iterable[int]:
        if indices is None:
            return range(self.num_envs)
        if isinstance(indices, int):
            return [indices]
        return indices
