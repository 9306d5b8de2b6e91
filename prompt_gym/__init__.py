"""prompt-gym: the Gymnasium of text-to-image prompt optimization.

Importing the package registers every env id, also as ``prompt_gym/<id>`` and with a flat
``Box`` observation as ``<name>-Flat-vN`` (see :mod:`prompt_gym.envs.registration`) and stays
light: numpy and gymnasium only; torch, diffusers and open_clip load inside the real backends.

>>> import gymnasium as gym
>>> import prompt_gym
>>> env = gym.make("ImageInversion-Shapes-v0")
>>> obs, info = env.reset(seed=0)
>>> sorted(obs)
['action_mask', 'candidates', 'chosen', 'current', 'similarity', 'target']
"""

from prompt_gym.backends import RewardBackend, make_backend
from prompt_gym.envs.registration import ENV_IDS, FLAT_IDS, NAMESPACED_IDS, register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["ENV_IDS", "FLAT_IDS", "NAMESPACED_IDS", "RewardBackend", "__version__", "make_backend"]
