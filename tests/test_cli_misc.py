"""`prompt-gym list`, `download` and errors at the CLI boundary."""

from __future__ import annotations

from prompt_gym.cli import main


def test_list_prints_ids_backends_rewards_and_agents(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in (
        "ImageInversion-Shapes-v0",
        "PromptRewriteTokens-v0",
        "sd-turbo-aesthetic",
        "promptist-v1",
        "range [-35.6, 10.0]",
        "reinforce",
        "maskable-ppo",
    ):
        assert word in out
    agents = next(line for line in out.splitlines() if line.startswith("agents:"))
    assert agents.split(": ", 1)[1].split(", ") == [
        "reinforce",
        "ppo",
        "maskable-ppo",
        "lm-ppo",
        "random",
        "greedy",
        "pez",
    ]


def test_download_of_an_unknown_preset_is_one_clear_error(capsys):
    assert main(["download", "no-such-model"]) == 2
    assert "no-such-model" in capsys.readouterr().err
