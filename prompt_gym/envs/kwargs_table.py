"""The README's table of every id's keyword arguments, generated from the registry.

One table per family: a row per keyword argument of the env class (its type and default, read
from the ``__init__`` signature) and a column per registered id, showing the value the id
registers where it differs from the default. ``tests/test_kwargs_table.py`` checks that the
README holds exactly this text, so the table cannot drift from the code; after changing an
env's arguments or an id, paste ``python -m prompt_gym.envs.kwargs_table`` into the README.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from prompt_gym.envs.registration import ENV_IDS, FAMILIES

SAME = "·"
"""A cell whose id registers the default."""


def _type_name(hint: Any) -> str:
    """A short name of a type hint, unions written with "or" (a table cell holds no ``|``).

    >>> _type_name(int | None), _type_name(dict[str, str] | None)
    ('int or None', 'dict[str, str] or None')
    """
    if hint is inspect.Parameter.empty:
        return ""
    if hint is type(None):
        return "None"
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if args:
        inner = ", ".join(_type_name(a) for a in args)
        return f"{typing.get_origin(hint).__name__}[{inner}]"
    return getattr(hint, "__name__", str(hint))


def _cell(value: Any) -> str:
    return f"`{value}`" if isinstance(value, str) else f"`{value!r}`"


def _family(env_id: str) -> str:
    return str(gym.spec(env_id).entry_point).rsplit(":", 1)[1].removesuffix("Env")


def family_table(family: str) -> str:
    """The markdown table of one family's ids and keyword arguments."""
    ids = [i for i in ENV_IDS if _family(i) == family]
    creator = load_env_creator(gym.spec(ids[0]).entry_point)
    hints = typing.get_type_hints(creator.__init__)
    params = [
        p
        for p in inspect.signature(creator).parameters.values()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    head = ["argument", "type", "default", *(f"`{i}`" for i in ids)]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in params:
        default = "(required)" if p.default is inspect.Parameter.empty else _cell(p.default)
        cells = [f"`{p.name}`", _type_name(hints.get(p.name, p.annotation)), default]
        for env_id in ids:
            registered = gym.spec(env_id).kwargs
            same = p.name not in registered or registered[p.name] == p.default
            cells.append(SAME if same else _cell(registered[p.name]))
        rows.append("| " + " | ".join(cells) + " |")
    steps = ["`max_episode_steps` (spec)", "int", ""]
    steps += [str(gym.spec(i).max_episode_steps) for i in ids]
    rows.append("| " + " | ".join(steps) + " |")
    return "\n".join(rows)


def kwargs_markdown() -> str:
    """Every family's table, each under a bold family name."""
    return "\n\n".join(f"**{f}**\n\n{family_table(f)}" for f in FAMILIES)


if __name__ == "__main__":
    print(kwargs_markdown())
