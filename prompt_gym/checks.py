"""Checks at the boundary: argparse types, ``--env-kwargs``, env ids and kwargs, typed settings.

Bad input fails here, before any work, with one ``ValueError`` (or argparse error) that says
what was wrong and what to do; the CLI turns it into one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import collections.abc
import difflib
import inspect
import types
import typing
from collections.abc import Sequence
from typing import Any


def positive_int(text: str) -> int:
    """An argparse ``type`` for an integer >= 1.

    >>> positive_int("3")
    3
    """
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    """An argparse ``type`` for an integer >= 0 (a seed).

    >>> nonnegative_int("0")
    0
    """
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def parse_env_kwargs(items: Sequence[str] | None) -> dict[str, Any]:
    """``--env-kwargs key:value ...`` (rl-zoo style) as a dict; values are read as YAML.

    Raises:
        ValueError: On an item without ``:`` or a value that is not valid YAML.

    >>> parse_env_kwargs(["level:style", "n_tokens:32", "target_index:null"])
    {'level': 'style', 'n_tokens': 32, 'target_index': None}
    """
    import yaml

    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, text = item.partition(":")
        if not sep or not key.strip():
            raise ValueError(f"--env-kwargs takes key:value items (e.g. level:style), got {item!r}")
        try:
            out[key.strip().replace("-", "_")] = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise ValueError(f"--env-kwargs {item!r}: the value is not valid YAML") from err
    return out


def check_type(name: str, value: Any, hint: Any, *, text_floats: bool = True) -> Any:
    """``value`` (called ``name`` in the error) checked against a type hint; returns the value.

    ``int`` takes no float or bool; ``float`` takes an int (made a float) and, with
    ``text_floats``, a number written as text (YAML reads ``3e-4`` as a string); containers are
    checked one level deep, and a list given for a tuple (``run.json`` stores one) becomes one.
    A hint this check does not know passes, left to the code that uses the value.

    Raises:
        ValueError: Naming ``name``, the type it needs and the value it got.

    >>> check_type("lr", 1, float), check_type("lr", "3e-4", float), check_type("n", None, int | None)
    (1.0, 0.0003, None)
    >>> check_type("num_envs", 2.5, int)
    Traceback (most recent call last):
    ...
    ValueError: num_envs must be int, got 2.5 (float)
    """
    if _matches(value, hint):
        if hint is float:
            return float(value)
        return tuple(value) if typing.get_origin(hint) is tuple else value  # JSON has no tuple
    if hint is float and text_floats and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    need = getattr(hint, "__name__", None) or str(hint).replace("typing.", "")
    raise ValueError(f"{name} must be {need}, got {value!r} ({type(value).__name__})")


def _matches(value: Any, hint: Any) -> bool:
    origin, params = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, p) for p in params)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is typing.Literal:
        return value in params
    if origin in (dict, collections.abc.Mapping):
        return isinstance(value, dict) and all(_matches(k, params[0]) for k in value)
    if origin in (list, tuple, collections.abc.Sequence):
        return isinstance(value, list | tuple) and not isinstance(value, str)
    if isinstance(hint, type):
        try:
            return isinstance(value, hint)
        except TypeError:  # a Protocol that is not runtime-checkable: not checked here
            return True
    return True  # a hint this check does not know: leave it to the agent's own checks


def prompt_gym_ids() -> list[str]:
    """Every registered id whose env is one of prompt-gym's (namespaced ones included)."""
    import gymnasium as gym

    import prompt_gym

    ours = [
        env_id
        for env_id, spec in gym.registry.items()
        if isinstance(spec.entry_point, str) and spec.entry_point.startswith("prompt_gym")
    ]
    return list(dict.fromkeys([*prompt_gym.ENV_IDS, *ours]))


def check_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> None:
    """Fail before any work on an id that is not prompt-gym's, or a kwarg its env does not take
    or of the wrong type (by the env's ``__init__`` signature and type hints).

    Raises:
        ValueError: Naming the close ids, the env's valid keyword arguments, or the argument
            and the type it needs.
    """
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    ids = prompt_gym_ids()
    name = env_id.split(":", 1)[-1]  # "module:Id" as gym.make takes it
    if name not in ids:
        close = difflib.get_close_matches(name, ids, n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}?" if close else "`prompt-gym list` shows the ids"
        raise ValueError(f"unknown env id {env_id!r}: {hint}")
    creator = load_env_creator(gym.spec(name).entry_point)
    params = inspect.signature(creator).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(env_kwargs or {}) - set(params))
    if unknown:
        hints = [
            f"{k!r} (did you mean {close[0]!r}?)"
            if (close := difflib.get_close_matches(k, params))
            else repr(k)
            for k in unknown
        ]
        raise ValueError(f"{name} takes no argument {', '.join(hints)}; valid: {', '.join(params)}")
    types_ = typing.get_type_hints(creator.__init__ if inspect.isclass(creator) else creator)
    for key, value in (env_kwargs or {}).items():
        if key in types_:
            check_type(f"{name} argument {key}", value, types_[key], text_floats=False)
