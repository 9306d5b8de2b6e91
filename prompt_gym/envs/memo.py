"""Data the envs derive from a backend once and share: target sets and prompt spaces.

A :class:`BackendMemo` maps ``(backend, key)`` to a value built on first use. It belongs to the
envs (the backend knows nothing of what envs derive from it) and holds its backends weakly, so a
memo never keeps a backend and its models alive; its values must not refer to the backend.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from prompt_gym.backends import RewardBackend

T = TypeVar("T")


class BackendMemo:
    """Values derived from a backend, one per ``(backend, key)``.

    >>> from prompt_gym import make_backend
    >>> memo, backend = BackendMemo(), make_backend("shapes")
    >>> memo.get(backend, "answer", lambda: 42), memo.get(backend, "answer", lambda: 0)
    (42, 42)
    """

    def __init__(self) -> None:
        self._values: weakref.WeakKeyDictionary[RewardBackend, dict[Hashable, Any]] = (
            weakref.WeakKeyDictionary()
        )

    def get(self, backend: RewardBackend, key: Hashable, build: Callable[[], T]) -> T:
        """The value of ``key`` for ``backend``, made by ``build()`` the first time."""
        values = self._values.setdefault(backend, {})
        if key not in values:
            values[key] = build()
        return values[key]
