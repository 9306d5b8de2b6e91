"""`prompt-gym train` / `eval` end to end: run dir, TensorBoard, resume, JSON, baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from prompt_gym.cli import main

ENV = "ImageInversion-Shapes-v0"
FAST = {"examples_every": 2, "save_every": 2, "eval_episodes": 8}
REQUIRED_SCALARS = {
    "charts/episodic_return",
    "charts/final_similarity",
    "charts/prompt_length",
    "losses/policy_loss",
    "losses/entropy",
    "backend/cache_hit_rate",
    "backend/images_per_s",
    "backend/images_generated",
}


def events(run_dir: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def hparams(run_dir: Path) -> tuple[dict, set[str]]:
    """The run's HParams entry: ``({name: value}, metric tags)``."""
    from tensorboard.plugins.hparams.plugin_data_pb2 import HParamsPluginData

    content = events(run_dir).PluginTagToContent("hparams")
    data = {tag: HParamsPluginData.FromString(raw) for tag, raw in content.items()}
    start = data["_hparams_/session_start_info"].session_start_info.hparams
    values = {
        k: v.WhichOneof("kind") and getattr(v, v.WhichOneof("kind")) for k, v in start.items()
    }
    metrics = {m.name.tag for m in data["_hparams_/experiment"].experiment.metric_infos}
    return values, metrics


def curve(run_dir: Path) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in events(run_dir).Scalars("charts/episodic_return")]


def train(tmp_path: Path, capsys, *argv: str, config: dict | None = None) -> Path:
    """Run `prompt-gym train`, return the run directory it printed."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / f"cfg{len(list(tmp_path.glob('cfg*')))}.yaml"
    cfg.write_text(json.dumps({**FAST, **(config or {})}))  # JSON is YAML
    rc = main(["train", "--logdir", str(tmp_path / "runs"), "--config", str(cfg), *argv])
    out = capsys.readouterr().out
    assert rc == 0, out
    line = next(x for x in out.splitlines() if x.startswith("run directory:"))
    return Path(line.split(":", 1)[1].strip())


def test_train_reinforce_writes_logs_checkpoint_curve_and_summary(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("baseline: value\nexamples_every: 2\neval_episodes: 8\n")
    rc = main(
        [
            "train",
            "--env",
            ENV,
            "--agent",
            "reinforce",
            "--total-timesteps",
            "400",
            "--num-envs",
            "8",
            "--seed",
            "3",
            "--logdir",
            str(tmp_path / "runs"),
            "--backend",
            "shapes",
            "--config",
            str(cfg),
            "--env-kwargs",
            "n_tokens:6",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    for key in (
        "run directory:",
        "tensorboard:",
        "learning curve:",
        "checkpoint:",
        "eval return:",
        "best prompt:",
    ):
        assert key in out
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith(f"{ENV}__reinforce__s3__")
    assert (run_dir / "learning_curve.png").stat().st_size > 1000
    assert list((run_dir / "checkpoints").glob("step_*.pt"))
    info = json.loads((run_dir / "run.json").read_text())
    assert info["agent"] == "reinforce" and info["args"]["baseline"] == "value"
    assert info["args"]["env_kwargs"] == {"n_tokens": 6}
    values, metrics = hparams(run_dir)
    assert values["baseline"] == "value" and values["num_envs"] == 8
    assert values["env_kwargs"] == '{"n_tokens": 6}' and values["backend"] == "shapes"
    assert metrics == {
        "hparams/eval_mean_return",
        "hparams/random_mean_return",
        "hparams/final_train_return",
    }
    acc = events(run_dir)
    assert metrics <= set(acc.Tags()["scalars"])
    assert "text/args/text_summary" in acc.Tags()["tensors"]
    assert "backend/scene_reuse_rate" in acc.Tags()["scalars"]
    tags = acc.Tags()
    assert REQUIRED_SCALARS | {"losses/value_loss"} <= set(tags["scalars"])
    assert "images/target_vs_generated" in tags["images"]
    assert any(t.startswith("text/best_prompts") for t in tags["tensors"])
    assert acc.Scalars("charts/episodic_return")[-1].step >= 400


def test_train_maskable_ppo_logs_namespaced_sb3_metrics(tmp_path, capsys):
    run_dir = train(
        tmp_path,
        capsys,
        "--env",
        ENV,
        "--agent",
        "maskable-ppo",
        "--total-timesteps",
        "512",
        "--num-envs",
        "4",
    )
    tags = events(run_dir).Tags()
    assert REQUIRED_SCALARS | {"losses/value_loss", "losses/approx_kl"} <= set(tags["scalars"])
    assert "images/target_vs_generated" in tags["images"]
    assert list((run_dir / "checkpoints").glob("step_*.zip"))
    values, metrics = hparams(run_dir)
    assert values["algo"] == "maskable-ppo" and "hparams/eval_mean_return" in metrics


@pytest.mark.parametrize("agent", ["reinforce", "maskable-ppo"])
def test_resume_continues_the_step_counter_and_reproduces_the_curve(tmp_path, capsys, agent):
    common = ["--env", ENV, "--agent", agent, "--seed", "5", "--num-envs", "4"]
    full = train(tmp_path / "a", capsys, *common, "--total-timesteps", "512")
    cut = train(tmp_path / "b", capsys, *common, "--total-timesteps", "256")
    first = curve(cut)
    assert main(["train", "--resume", str(cut), "--total-timesteps", "512"]) == 0
    capsys.readouterr()
    resumed = curve(cut)
    assert resumed[: len(first)] == first
    assert resumed[-1][0] >= 512 > first[-1][0]
    assert [s for s, _ in resumed] == sorted({s for s, _ in resumed})  # no doubled steps
    assert resumed == curve(full)


def test_interrupted_run_resumes_from_its_last_checkpoint(tmp_path, capsys, monkeypatch):
    """Ctrl-C mid-run; the resumed run drops the events logged after the checkpoint."""
    from prompt_gym.agents import reinforce

    common = ["--env", ENV, "--agent", "reinforce", "--seed", "2", "--num-envs", "4"]
    full = train(tmp_path / "a", capsys, *common, "--total-timesteps", "512")
    real, calls = reinforce.update, []

    def interrupted_at_update_7(*args, **kwargs):
        calls.append(1)
        if len(calls) == 7:  # updates 1-6 are logged, the last checkpoint is at update 4: the
            raise KeyboardInterrupt  # resumed run logs updates 5 and 6 again, the old ones purged
        return real(*args, **kwargs)

    monkeypatch.setattr(reinforce, "update", interrupted_at_update_7)
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(json.dumps({**FAST, "save_every": 4}))
    argv = ["train", *common, "--total-timesteps", "512", "--logdir", str(tmp_path / "b")]
    assert main([*argv, "--config", str(cfg)]) == 130
    assert "continue with: prompt-gym train --resume" in capsys.readouterr().out
    monkeypatch.undo()
    (run_dir,) = (tmp_path / "b").iterdir()
    assert curve(run_dir)[-1][0] < 512
    assert main(["train", "--resume", str(run_dir)]) == 0
    capsys.readouterr()
    assert curve(run_dir) == curve(full)


def test_resume_rejects_other_settings(tmp_path, capsys):
    run_dir = train(
        tmp_path, capsys, "--env", ENV, "--agent", "reinforce", "--total-timesteps", "100"
    )
    assert main(["train", "--resume", str(run_dir), "--seed", "9"]) == 2
    assert "only --total-timesteps" in capsys.readouterr().err


def test_eval_checkpoint_and_random_write_json(tmp_path, capsys):
    run_dir = train(
        tmp_path, capsys, "--env", ENV, "--agent", "reinforce", "--total-timesteps", "200"
    )
    results = {}
    for name, source in (
        ("trained", ["--checkpoint", str(run_dir)]),
        ("random", ["--agent", "random"]),
    ):
        out = tmp_path / f"{name}.json"
        rc = main(
            ["eval", "--env", ENV, *source, "--episodes", "6", "--seed", "7", "--json", str(out)]
        )
        assert rc == 0
        results[name] = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "mean return" in printed
    for r in results.values():
        assert {
            "mean_return",
            "ci95",
            "episodes",
            "env_id",
            "mean_final_similarity",
            "examples",
        } <= set(r)
        assert r["episodes"] == 6 and r["env_id"] == ENV
        assert all("prompt" in ex for ex in r["examples"])
    ckpt = sorted((run_dir / "checkpoints").glob("*.pt"))[-1]  # the latest, as for the run dir
    again = tmp_path / "again.json"
    assert (
        main(
            [
                "eval",
                "--checkpoint",
                str(ckpt),
                "--episodes",
                "6",
                "--seed",
                "7",
                "--json",
                str(again),
            ]
        )
        == 0
    )
    assert (
        json.loads(again.read_text())["mean_return"] == results["trained"]["mean_return"]
    )  # deterministic


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--env", ENV, "--agent", "reinforce", "--config", "{cfg}"], "unknown setting"),
        (["eval", "--env", ENV, "--agent", "reinforce"], "needs a --checkpoint"),
        (["eval", "--agent", "random"], "needs --env"),
        (["eval", "--checkpoint", "{missing}"], "no checkpoint"),
    ],
)
def test_bad_input_fails_once_with_a_clear_message(tmp_path, capsys, argv, message):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("learning_rat: 0.1\n")
    argv = [a.format(cfg=cfg, missing=tmp_path / "nope") for a in argv]
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def eval_json(tmp_path: Path, *argv: str) -> dict:
    """Run `prompt-gym eval ... --json`, return the JSON it wrote."""
    out = tmp_path / f"eval{len(list(tmp_path.glob('eval*.json')))}.json"
    assert main(["eval", *argv, "--json", str(out)]) == 0
    return json.loads(out.read_text())


def test_eval_pez_on_the_tiny_backend_end_to_end(tmp_path, capsys):
    r = eval_json(
        tmp_path, "--agent", "pez", "--env", "ImageInversion-v0", "--backend", "tiny",
        "--episodes", "2",
    )  # fmt: skip
    assert "pez on ImageInversion-v0" in capsys.readouterr().out
    assert {"mean_return", "ci95", "episodes", "env_id"} <= set(r)
    assert r["agent"] == "pez" and r["episodes"] == 2 and r["env_id"] == "ImageInversion-v0"
    assert -1.0 <= r["mean_return"] <= 1.0 and r["ci95"] >= 0.0
    assert [ex["seed"] for ex in r["examples"]] == [10_000, 10_001]
    for ex in r["examples"]:
        assert ex["prompt"].strip() and ex["return"] == pytest.approx(ex["similarity"])
    assert r["mean_return"] == pytest.approx(sum(ex["return"] for ex in r["examples"]) / 2)


def test_eval_pez_on_a_shapes_id_runs_through_shapes_clip(tmp_path, capsys):
    r = eval_json(tmp_path, "--agent", "pez", "--env", ENV, "--episodes", "1")
    assert "pez on ImageInversion-Shapes-v0" in capsys.readouterr().out
    assert r["episodes"] == 1 and 0.0 < r["mean_return"] <= 1.0  # scored by the procedural scorer


@pytest.mark.parametrize(("env_id", "split"), [(ENV, None), ("PromptRewrite-Shapes-v0", "test")])
def test_eval_greedy_beats_random_from_the_cli(tmp_path, capsys, env_id, split):
    extra = ["--split", split] if split else []
    argv = ["--env", env_id, "--episodes", "16", "--seed", "3", *extra]
    greedy = eval_json(tmp_path, "--agent", "greedy", *argv)
    rnd = eval_json(tmp_path, "--agent", "random", *argv)
    capsys.readouterr()
    assert greedy["agent"] == "greedy" and greedy["episodes"] == 16 and greedy["env_id"] == env_id
    assert greedy["split"] == split
    assert greedy["mean_return"] > rnd["mean_return"] + max(greedy["ci95"], rnd["ci95"])
    if split:  # the held-out prompts, the same for both agents
        sources = [ex["source"] for ex in greedy["examples"]]
        assert sources == [ex["source"] for ex in rnd["examples"]]
        train = eval_json(tmp_path, "--agent", "greedy", "--env", env_id, "--episodes", "16",
                          "--seed", "3")  # fmt: skip
        assert train["split"] == "train"
        assert sources != [ex["source"] for ex in train["examples"]]


def test_eval_reports_the_fresh_seed_score_below_the_seed_greedy_fitted(tmp_path, capsys):
    """Greedy chooses every word on the episode's one image seed; on fresh seeds it scores less."""
    argv = ["--env", "ImageInversion-Shapes-Hard-v1", "--episodes", "16"]
    greedy = eval_json(tmp_path, "--agent", "greedy", *argv)
    rnd = eval_json(tmp_path, "--agent", "random", *argv)
    assert "fresh-seed score" in capsys.readouterr().out
    assert greedy["fresh_images"] == 4
    assert greedy["fresh_mean"] < greedy["mean_final_similarity"] - 0.01
    assert greedy["fresh_mean"] > rnd["fresh_mean"] + greedy["fresh_ci95"]


def test_backend_scalars_count_exact_repeats_and_scene_reuse():
    # Why backend/cache_hit_rate is ~0 in training: each episode draws fresh image seeds, so
    # exact (prompt, seed) repeats are rare; a new prompt of an already drawn scene is counted by
    # backend/scene_reuse_rate instead.
    from prompt_gym.agents.tb import backend_scalars

    from prompt_gym import make_backend

    backend = make_backend("shapes")
    backend.score(["a red circle"], [0])
    assert backend_scalars(backend)["backend/cache_hit_rate"] == 0.0
    backend.score(["a red circle"], [0])  # the same request: a cache hit
    assert backend_scalars(backend)["backend/cache_hit_rate"] == 0.5
    backend.score(["red circle, a"], [0])  # another prompt of the same scene: a miss, reused
    got = backend_scalars(backend)
    assert got["backend/cache_hit_rate"] == pytest.approx(1 / 3)
    assert got["backend/scene_reuse_rate"] == 0.5 and got["backend/images_reused"] == 1
    assert got["backend/images_generated"] == 1
