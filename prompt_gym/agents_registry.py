"""Where the agents plug into the CLI: ``AGENTS`` and the ``train`` / ``eval`` sub-commands.

Agents live in ``prompt_gym.agents`` (the top-level ``agents/`` folder) and need the ``agents``
extra; this module imports none of them until a command runs.
"""

from __future__ import annotations

import argparse

AGENTS: dict[str, str] = {}
"""Agent name -> ``"module:function"`` of its train entry point."""


def add_agent_commands(sub: argparse._SubParsersAction) -> None:
    """Add the agent sub-commands (none until agents are installed)."""
