"""Keep torch usable in a process forked from one that already ran a model.

``AsyncVectorEnv`` forks its workers by default (the ``fork`` context on Linux), after building
one env in the parent to read the spaces. With a real or tiny backend the parent has then run a
model, which starts torch's OpenMP thread team; GNU OpenMP does not survive ``fork``, so the
child's first multi-threaded torch op waited forever on threads that do not exist in it (no CPU
use, never returns). :func:`install_fork_guard` makes every child forked after a model is
loaded run torch on one thread, which needs no OpenMP team: the hang cannot happen, and a
forked env worker is one of many processes anyway. ``spawn`` and ``forkserver`` children start
fresh and are not affected. A child that wants more threads can call
``torch.set_num_threads`` itself, after creating its own models in a fresh process.
"""

from __future__ import annotations

import os
import threading

_INSTALLED = threading.Event()


def _one_thread_in_child() -> None:
    import torch

    torch.set_num_threads(1)


def install_fork_guard() -> None:
    """Register (once per process) the after-fork hook that gives a forked child one torch thread.

    >>> install_fork_guard(); install_fork_guard()  # idempotent
    """
    if _INSTALLED.is_set():
        return
    _INSTALLED.set()
    os.register_at_fork(after_in_child=_one_thread_in_child)
