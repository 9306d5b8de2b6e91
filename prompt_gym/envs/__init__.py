"""The env families; ids are registered by :mod:`prompt_gym.envs.registration`."""
