"""Every registered agent conforms to the agent protocol (prompt_gym.agents.protocol)."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

pytest.importorskip("sb3_contrib")
from prompt_gym.agents import random_agent, reinforce
from prompt_gym.agents.protocol import Agent, TrainableAgent

from prompt_gym.agents_registry import AGENTS, BASELINES, TRAINABLE, load_agent

ENV = "ImageInversion-Shapes-v0"


def declared(cls: type, name: str) -> list[inspect.Parameter]:
    """The parameters of a protocol method, without ``self``."""
    return list(inspect.signature(getattr(cls, name)).parameters.values())[1:]


def assert_conforms(function, protocol: list[inspect.Parameter]) -> None:
    """Same leading parameters (name, kind, default); anything extra has a default."""
    params = list(inspect.signature(function).parameters.values())
    positional = [p for p in protocol if p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert [p.name for p in params[: len(positional)]] == [p.name for p in positional]
    by_name = {p.name: p for p in params}
    for p in protocol:
        assert p.name in by_name, f"{function.__module__}.{function.__name__} lacks {p.name}"
        assert by_name[p.name].kind == p.kind, p.name
        assert by_name[p.name].default == p.default, p.name
    names = {p.name for p in protocol}
    extra = [p for p in params if p.name not in names]
    assert all(p.default is not inspect.Parameter.empty for p in extra), extra


@pytest.mark.parametrize("name", list(AGENTS))
def test_every_agent_evaluates_with_the_one_protocol_signature(name):
    assert_conforms(load_agent(name).evaluate, declared(Agent, "evaluate"))


@pytest.mark.parametrize("name", TRAINABLE)
def test_trainable_agents_declare_every_hook(name):
    module = load_agent(name)
    assert dataclasses.is_dataclass(module.Args)
    assert {"env_id", "seed", "total_timesteps"} <= {
        f.name for f in dataclasses.fields(module.Args)
    }
    for hook in ("env_kwargs", "reset_options", "train", "load_policy"):
        assert_conforms(getattr(module, hook), declared(TrainableAgent, hook))


def test_trainable_agents_need_a_checkpoint_and_baselines_refuse_one():
    assert set(TRAINABLE) | set(BASELINES) == set(AGENTS)
    with pytest.raises(ValueError, match="checkpoint"):
        reinforce.evaluate(ENV, 1)
    with pytest.raises(ValueError, match="no checkpoint"):
        random_agent.evaluate(ENV, 1, checkpoint="runs/x")
    episodes = random_agent.evaluate(ENV, 2, seed=3, env_kwargs={"backend": "shapes"})
    assert [e.seed for e in episodes] == [3, 4]
