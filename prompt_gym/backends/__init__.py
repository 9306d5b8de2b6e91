"""Backends: the protocols, the reward backend and the named presets."""

from prompt_gym.backends.factory import make_backend
from prompt_gym.backends.protocols import (
    Captioner,
    Generator,
    GeneratorBase,
    Scorer,
    ScorerBase,
    Target,
)
from prompt_gym.backends.registry import BACKENDS, COMPONENTS, BackendPreset
from prompt_gym.backends.results import AestheticNotRequestedError, BackendStats, ScoreResult
from prompt_gym.backends.reward_backend import RewardBackend

__all__ = [
    "BACKENDS",
    "COMPONENTS",
    "AestheticNotRequestedError",
    "BackendPreset",
    "BackendStats",
    "Captioner",
    "Generator",
    "GeneratorBase",
    "RewardBackend",
    "ScoreResult",
    "Scorer",
    "ScorerBase",
    "Target",
    "make_backend",
]
