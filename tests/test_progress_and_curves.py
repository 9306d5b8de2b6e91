"""Progress bars on the long commands; the learning-curve PNG's lines and legend."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prompt_gym.agents.runs import caption_oracle
from prompt_gym.agents.tb import curve_figure

from prompt_gym.cli import main
from prompt_gym.progress import advance, progress


def test_advance_moves_only_an_open_bar_of_its_unit():
    with progress(4, "outer", unit="run") as bar:
        advance(3)  # episodes finishing inside a run do not move a bar of runs
        advance(2, unit="run")
        assert bar.n == 2
    advance(5, unit="run")  # closed: nothing happens
    assert bar.n == 2


def test_eval_shows_a_bar_over_its_episodes(capsys):
    code = main(
        ["eval", "--agent", "random", "--env", "ImageInversion-Shapes-v0", "--episodes", "5"]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert "eval random" in err and "5/5" in err
    assert "mean return" in out and "eval random" not in out  # stdout stays clean


def test_bench_measures_the_env_and_kwargs_it_is_given(tmp_path, capsys):
    path = tmp_path / "bench.json"
    argv = ["bench", "--batch-sizes", "1", "2", "--env", "ImageInversion-Shapes-v1"]
    argv += ["--num-envs", "4", "--env-kwargs", "n_tokens:8", "--json", str(path)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "ImageInversion-Shapes-v1 n_tokens=8 native vector env, 4 envs" in out
    assert "2/2" in err  # a bar over the batch sizes
    figures = json.loads(path.read_text())
    assert figures["env_kwargs"] == {"n_tokens": 8} and figures["num_envs"] == 4
    assert figures["env_steps_per_s"] > 0 and [r["batch"] for r in figures["backend"]] == [1, 2]


def test_bench_rejects_a_kwarg_the_env_does_not_take(capsys):
    assert main(["bench", "--batch-sizes", "1", "--env-kwargs", "n_tokenz:8"]) == 2
    assert "did you mean 'n_tokens'" in capsys.readouterr().err


def test_caption_oracle_is_the_captions_similarity_on_each_eval_episode():
    import gymnasium as gym

    best = caption_oracle("ImageInversion-Shapes-v0", {}, 3, 100)
    env = gym.make("ImageInversion-Shapes-v0")
    by_hand = []
    for i in range(3):
        env.reset(seed=100 + i)
        by_hand.append(env.unwrapped.evaluate_prompt(env.unwrapped.target.caption))
    assert best == pytest.approx(np.mean(by_hand), abs=1e-12)
    assert 0.5 < best <= 1.0


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [("PromptRewrite-Shapes-v0", {}), ("ImageInversion-Shapes-v0", {"reward_mode": "dense"})],
)
def test_caption_oracle_is_none_where_no_optimum_is_known(env_id, kwargs):
    assert caption_oracle(env_id, kwargs, 2, 0) is None


def test_curve_figure_has_a_legend_entry_for_every_line_and_point():
    import matplotlib.pyplot as plt

    points = [(i * 10, 0.5 + 0.01 * i) for i in range(30)]
    fig = curve_figure(points, "t", baseline=0.4, evals=[(300, 0.8, 0.02)], best=0.9)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    assert labels == [
        "batch mean",
        "moving mean (1)",
        "random agent (eval)",
        "best achievable (target caption, eval)",
        "greedy policy (eval, 95% CI)",
    ]
    drawn = [line for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert len(drawn) == 4  # two curve lines, two reference lines (the point is a container)
