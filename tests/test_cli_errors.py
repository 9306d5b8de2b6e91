"""Bad input at the CLI boundary: one ``error:`` line, exit code 2, no traceback, no run directory.

Also ``--version``, ``--env-kwargs`` and a hypothesis fuzz of the argument parsing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prompt_gym.agents_registry import merge_env_kwargs
from prompt_gym.checks import check_env, parse_env_kwargs
from prompt_gym.cli import main, version

pytest.importorskip("torch")

ENV = "ImageInversion-Shapes-v0"
TRAIN = ["train", "--env", ENV, "--agent", "reinforce"]


def one_error_line(capsys, argv: list[str]) -> str:
    """Run ``argv``; it must exit 2 with one ``error:`` line on stderr; return that line."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    return errors[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """Bad configs, images and a checkpoint."""
    from PIL import Image

    out = {
        "lr": "learning_rate: abc\n",
        "num_envs": "num_envs: 2.5\n",
        "syntax": "a: [1,\n",
        "python": 'x: !!python/object/apply:os.system ["echo pwned > {pwned}"]\n',
        "seed": "seed: -1\n",
        "list": "- 1\n- 2\n",
        "env_kwargs": "env_kwargs: style\n",
    }
    paths = {}
    for name, text in out.items():
        paths[name] = tmp_path / f"{name}.yaml"
        paths[name].write_text(text.format(pwned=tmp_path / "pwned"))
    png = tmp_path / "ok.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(png)
    data = png.read_bytes()
    paths["truncated"] = tmp_path / "truncated.png"
    paths["truncated"].write_bytes(data[: len(data) // 2])
    paths["ok"] = png
    paths["checkpoint"] = tmp_path / "step_1.pt"
    paths["checkpoint"].write_bytes(b"not a checkpoint at all")
    paths["corrupt_run"] = tmp_path / "corrupt_run"
    paths["corrupt_run"].mkdir()
    (paths["corrupt_run"] / "run.json").write_text("{bad")
    paths["bad_checkpoint_run"] = run = tmp_path / "bad_checkpoint_run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"agent": "reinforce", "args": {"env_id": ENV}}))
    (run / "checkpoints" / "step_5.pt").write_bytes(b"junk")
    return paths


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "--env", "ImageInversion-Shape-v0", "--agent", "reinforce"],
            "ImageInversion-Shapes-v0",
        ),
        (["train", "--env", "Hopper-v4", "--agent", "reinforce"], "unknown env id 'Hopper-v4'"),
        (
            ["eval", "--agent", "random", "--env", "PromptRewrite-Shapes-v9"],
            "did you mean PromptRewrite-Shapes",
        ),
        ([*TRAIN, "--env-kwargs", "leve:style"], "(did you mean 'level'?); valid: backend, level"),
        ([*TRAIN, "--config", "{env_kwargs}"], "setting env_kwargs must be dict, got 'style'"),
        ([*TRAIN, "--config", "{env_kwargs}", "--env-kwargs", "a:1"], "must be a mapping"),
        (["eval", "--agent", "random", "--env", ENV, "--env-kwargs", "n_tokens"], "key:value"),
        ([*TRAIN, "--config", "{lr}"], "learning_rate must be float, got 'abc'"),
        ([*TRAIN, "--config", "{num_envs}"], "num_envs must be int, got 2.5"),
        ([*TRAIN, "--config", "{syntax}"], "(line 2, column 1)"),
        ([*TRAIN, "--config", "{python}"], "python/object/apply"),
        ([*TRAIN, "--config", "{list}"], "must hold a mapping"),
        ([*TRAIN, "--config", "{seed}"], "seed must be >= 0, got -1"),
        ([*TRAIN, "--seed", "-1"], "argument --seed: must be >= 0"),
        (["invert", "{truncated}", "--backend", "shapes"], "truncated or corrupt image"),
        (["eval", "--checkpoint", "{checkpoint}"], "loads safely"),
        (["bench", "--batch-sizes", "16", "0"], "argument --batch-sizes: must be >= 1, got 0"),
        (["invert", "{ok}", "--steps", "0"], "argument --steps: must be >= 1"),
        (["train", "--resume", "{corrupt_run}"], "run.json is corrupt: not valid JSON"),
        (["train", "--resume", "{bad_checkpoint_run}"], "step_5.pt is not a prompt-gym checkpoint"),
        (
            ["eval", "--agent", "random", "--env", ENV, "--env-kwargs", "n_tokens:abc"],
            "ImageInversion-Shapes-v0 argument n_tokens must be int, got 'abc' (str)",
        ),
        ([*TRAIN, "--env-kwargs", "invalid_penalty:[1]"], "argument invalid_penalty must be float"),
        ([*TRAIN, "--backend-service", "http://x"], "--backend-service takes ray://APP"),
        (
            [*TRAIN, "--backend", "shapes", "--backend-service", "ray://x"],
            "give --backend or --backend-service, not both",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(tmp_path, capsys, files, argv, message):
    runs = tmp_path / "runs"
    argv = [a.format(**files) for a in argv]
    if argv[0] == "train" and "--resume" not in argv:
        argv += ["--logdir", str(runs)]
    assert message in one_error_line(capsys, argv)
    assert not runs.exists()  # failed before any run directory was made
    assert not (tmp_path / "pwned").exists()  # the !!python tag ran nothing


def test_decompression_bomb_is_refused_not_decoded(tmp_path, capsys, monkeypatch, files):
    from PIL import Image

    # 32 x 32 = 1024 pixels: over a limit of 600 PIL only warns, over 2 x 400 it raises
    for limit in (600, 400):
        monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
        line = one_error_line(capsys, ["invert", str(files["ok"]), "--backend", "shapes"])
        assert f"more pixels than PIL's limit of {limit}" in line


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"prompt-gym {version()}"
    assert version()[0].isdigit()


def test_help_exits_0(capsys):
    assert main(["train", "--help"]) == 0
    assert "--env-kwargs KEY:VALUE" in capsys.readouterr().out


# ------------------------------------------------------------------------------ --env-kwargs
def test_env_kwargs_parse_as_yaml_and_merge_over_the_config():
    assert parse_env_kwargs(["level:style", "n_tokens:32", "prompt_space:a:b", "x:[1, 2]"]) == {
        "level": "style",
        "n_tokens": 32,
        "prompt_space": "a:b",
        "x": [1, 2],
    }
    assert merge_env_kwargs({"level": "objects", "n_tokens": 8}, ["level:style"]) == {
        "level": "style",
        "n_tokens": 8,
    }
    with pytest.raises(ValueError, match="not valid YAML"):
        parse_env_kwargs(["x:[1,"])


def test_check_env_takes_the_env_arguments_and_render_mode():
    check_env(ENV, {"level": "style", "n_tokens": 32, "render_mode": "rgb_array"})
    check_env(f"prompt_gym:{ENV}", {})
    with pytest.raises(ValueError, match="no argument 'tokens' \\(did you mean 'n_tokens'\\?\\)"):
        check_env(ENV, {"tokens": 3})


def test_train_env_kwargs_reach_the_run_args(tmp_path, capsys, monkeypatch):
    from prompt_gym.agents import reinforce

    seen = {}

    def fake_train(args, resume=None):
        seen["args"] = args
        raise KeyboardInterrupt

    monkeypatch.setattr(reinforce, "train", fake_train)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("env_kwargs: {level: objects, n_tokens: 8}\nlearning_rate: 3e-4\n")
    argv = [*TRAIN, "--config", str(cfg), "--env-kwargs", "n_tokens:16", "target_set_size:4"]
    assert main(argv) == 130
    args = seen["args"]
    assert args.env_kwargs == {"level": "objects", "n_tokens": 16, "target_set_size": 4}
    assert args.learning_rate == 3e-4  # YAML reads 3e-4 as text; a float field takes it


def test_eval_env_kwargs_set_the_split(tmp_path, capsys):
    out = tmp_path / "e.json"
    argv = ["eval", "--agent", "random", "--env", "PromptRewrite-Shapes-v0", "--episodes", "2"]
    assert main([*argv, "--env-kwargs", "split:test", "--json", str(out)]) == 0
    assert "test split" in capsys.readouterr().out


def test_resume_refuses_env_kwargs(tmp_path, capsys):
    line = one_error_line(capsys, ["train", "--resume", str(tmp_path), "--env-kwargs", "a:1"])
    assert "no run.json" in line or "--env-kwargs" in line


# ------------------------------------------------------------------------------ fuzz
SUBCOMMANDS = {
    "train": [
        "--env",
        "--agent",
        "--total-timesteps",
        "--num-envs",
        "--seed",
        "--backend",
        "--config",
        "--env-kwargs",
        "--sft",
        "--resume",
    ],
    "eval": [
        "--env",
        "--checkpoint",
        "--agent",
        "--episodes",
        "--seed",
        "--backend",
        "--split",
        "--env-kwargs",
    ],
    "bench": ["--suite", "--quick", "--seeds", "--tasks", "--backend", "--batch-sizes"],
    "invert": ["--backend", "--method", "--steps", "--prompt-len", "--seed"],
    "rewrite": ["--checkpoint", "--backend", "--seed", "--sample"],
    "list": [],
    "download": [],
}
JUNK = st.sampled_from(
    [
        "",
        "-1",
        "0",
        "2.5",
        "abc",
        "nan",
        "1e9",
        ":",
        "a:b",
        "{",
        "!!python/none",
        "ç",
        "--",
        "reinforce",
        "random",
        ENV,
        "ImageInversion-Shape-v0",
        "test",
    ]
)
# a value each sub-command rejects before any work, put last so nothing overrides it
POISON = {
    "train": [
        ["--seed", "-1"],
        ["--env", "NoSuch-v0", "--agent", "reinforce"],
        ["--env", ENV, "--agent", "reinforce", "--env-kwargs", "bogus:1"],
        ["--num-envs", "x"],
    ],
    "eval": [
        ["--episodes", "0"],
        ["--seed", "-5"],
        ["--agent", "random", "--env", "No-v0"],
        ["--split", "nope"],
    ],
    "bench": [["--batch-sizes", "0"], ["--seeds", "-2"]],
    "invert": [["--steps", "0"], ["--method", "nope"]],
    "rewrite": [["--seed", "x"]],
    "list": [["--junk"]],
    "download": [["a", "b"]],
}


@st.composite
def argvs(draw) -> list[str]:
    command = draw(st.sampled_from(sorted(SUBCOMMANDS)))
    argv = [command]
    if command in ("invert", "rewrite", "download"):
        argv.append(draw(JUNK.filter(lambda s: not s.startswith("-"))))
    for _ in range(draw(st.integers(0, 4))):
        flags = SUBCOMMANDS[command]
        if flags:
            argv += [draw(st.sampled_from(flags)), draw(JUNK)]
    if draw(st.booleans()):
        argv.append("--help")
    else:
        argv += draw(st.sampled_from(POISON[command]))
    return argv


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(argv=argvs())
def test_fuzzed_argv_exits_0_or_2_without_a_traceback(capsys, tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)  # anything written lands here
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc in (0, 2), (argv, err)
    assert "Traceback" not in err, (argv, err)
    assert not (tmp_path / "runs").exists(), argv
