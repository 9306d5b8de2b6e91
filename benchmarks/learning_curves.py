"""Learning curves of every agent on every Shapes id: CSV, PNG (mean and 95% band), markdown table.

Each trainable (agent, env) pair is trained for several seeds through the agents' own ``train``
functions; the final greedy policy is evaluated on fixed episodes (seeds ``10000 + i``), next to
the baselines on the same episodes:

* ``ImageInversion-Shapes-v0``, ``PromptRewrite-Shapes-v0``: REINFORCE, PPO, MaskablePPO; the
  random (masked uniform) and greedy baselines;
* ``PromptRewriteTokens-Shapes-v0`` (a vocabulary token per step, no candidate list or mask):
  LM-PPO (its SFT start reported too), random tokens and the greedy phrase search, all on the
  **test split** (held-out prompts), as LM-PPO's own summary; the other rows use the env's
  default (the train split for ``PromptRewrite-Shapes-v0``), see the ``split`` column;
* PEZ on ``ImageInversion-Shapes-v0``: 16 tokens, ``PEZ_STEPS`` AdamW steps (LR 0.1, weight
  decay 0.1, as the seed) through shapes-clip (the shapes presets' declared differentiable proxy),
  each found prompt scored by the env's own procedural scorer on the same episodes; PEZ inverts
  images, so it is N/A on the rewrite ids.

Headline check: REINFORCE on ``ImageInversion-Shapes-v0`` (level ``objects``) should reach 90% of
the *best achievable* similarity within 2 minutes on a 2-core CPU. Best achievable, per
evaluation episode: the similarity to the target of the target's own canonical prompt
(``target.caption``, the scene spec written out) rendered with that episode's image seeds, i.e.
what an inverter that knew the scene would score. Also reported: the best prompt inside the
action space (every in-order subset of the episode's candidate tokens, brute force).

Outputs go to ``--out`` (default ``benchmarks/out/``, git-ignored): ``learning_curves.csv``
(``series`` ``train``: the training curves; ``eval``: the final evaluation of every agent and
baseline), ``learning_curves.png`` (one panel per env, baselines as horizontal lines),
``learning_curves.md``.

Usage::

    python benchmarks/learning_curves.py            # 3 seeds, every pair (about 15 minutes)
    python benchmarks/learning_curves.py --quick    # 2 seeds, no plain PPO, half budgets
"""

from __future__ import annotations

import argparse
import csv
import itertools
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from prompt_gym.agents import greedy, pez, random_agent, reinforce, sb3_ppo
from prompt_gym.agents.checkpoints import find_checkpoint, load_checkpoint
from prompt_gym.agents.episodes import ci95, evaluate_policy, summarize
from prompt_gym.agents.lm_ppo import ppo as lm_ppo
from prompt_gym.agents.lm_ppo.models import policy_from_config
from prompt_gym.agents.lm_rollout import (
    TokenSpace,
    evaluate_model,
    make_venv,
    random_rewriter,
    run_rewriter,
)
from prompt_gym.agents.random_agent import RandomPolicy
from prompt_gym.agents.runs import RUN_INFO, read_run_info

import prompt_gym
from prompt_gym.bench.contestants import PEZ_STEPS

OUT = Path(__file__).parent / "out"
EVAL_SEED, EVAL_EPISODES = 10_000, 64
HEADLINE = ("reinforce", "ImageInversion-Shapes-v0")
TOKENS_ID = "PromptRewriteTokens-Shapes-v0"
SHAPES_IDS = [i for i in prompt_gym.ENV_IDS if "-Shapes-" in i and i.endswith("-v0")]
"""The v0 ids (world v2); the -v1 tiers are measured by benchmarks/suite.py."""
PEZ_NOTE = "inverts images: N/A on the rewrite ids"

# (agent, env id) -> total env steps per seed
BUDGETS: dict[tuple[str, str], int] = {
    ("reinforce", "ImageInversion-Shapes-v0"): 40_000,
    ("maskable-ppo", "ImageInversion-Shapes-v0"): 30_000,
    ("ppo", "ImageInversion-Shapes-v0"): 30_000,
    ("reinforce", "PromptRewrite-Shapes-v0"): 15_000,
    ("maskable-ppo", "PromptRewrite-Shapes-v0"): 15_000,
    ("ppo", "PromptRewrite-Shapes-v0"): 15_000,
    ("lm-ppo", TOKENS_ID): 80_000,
}
MODULES = {"reinforce": reinforce, "ppo": sb3_ppo, "maskable-ppo": sb3_ppo, "lm-ppo": lm_ppo}


def make_args(agent: str, env_id: str, seed: int, steps: int, logdir: Path):
    """The agent's ``Args`` for one benchmark run."""
    shared = {"env_id": env_id, "seed": seed, "total_timesteps": steps, "logdir": str(logdir)}
    shared.update(eval_episodes=EVAL_EPISODES, eval_seed=EVAL_SEED)
    if agent == "reinforce":
        policy = "candidates" if env_id.startswith("ImageInversion") else "mlp"
        return reinforce, reinforce.Args(policy=policy, **shared)
    if agent == "lm-ppo":
        return lm_ppo, lm_ppo.Args(**shared)
    return sb3_ppo, sb3_ppo.Args(algo=agent, **shared)


def eval_split(env_id: str) -> str | None:
    """The prompt split every row of ``env_id`` is evaluated on (``None``: the env has none)."""
    if env_id == TOKENS_ID:
        return "test"
    return "train" if env_id.startswith("PromptRewrite") else None


def split_kwargs(env_id: str) -> dict[str, Any]:
    return {"split": "test"} if eval_split(env_id) == "test" else {}


def best_achievable(env_id: str, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per episode: similarity of the target's caption, and of the best in-order candidate subset."""
    env = gym.make(env_id)
    u = env.unwrapped
    caption, oracle = [], []
    for seed in seeds:
        env.reset(seed=seed)
        caption.append(u.evaluate_prompt(u.target.caption))
        words = u.candidates
        subsets = itertools.chain.from_iterable(
            itertools.combinations(range(len(words)), k) for k in range(1, len(words) + 1)
        )
        oracle.append(max(u.evaluate_prompt(" ".join(words[i] for i in s)) for s in subsets))
    env.close()
    return np.array(caption), np.array(oracle)


def trailing_mean(y: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last ``k`` values at each point (fewer at the start).

    >>> trailing_mean(np.array([1.0, 3.0, 5.0]), 2).tolist()
    [1.0, 2.0, 4.0]
    """
    c = np.concatenate([[0.0], np.cumsum(y)])
    i = np.arange(1, len(y) + 1)
    lo = np.maximum(0, i - k)
    return (c[i] - c[lo]) / (i - lo)


def band(curves: list[np.ndarray], grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and 95% half-width over seeds of smoothed curves interpolated on ``grid``."""
    ys = []
    for c in curves:
        ys.append(np.interp(grid, c[:, 0], trailing_mean(c[:, 1], max(1, len(c) // 25))))
    ys = np.array(ys)
    half = 1.96 * ys.std(axis=0, ddof=1) / np.sqrt(len(ys)) if len(ys) > 1 else 0 * ys[0]
    return ys.mean(axis=0), half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2 seeds, no plain PPO, half budgets")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild the outputs from <out>/runs, no training",
    )
    opts = parser.parse_args()
    budgets = dict(BUDGETS)
    if opts.quick:
        opts.seeds = min(opts.seeds, 2)
        budgets = {k: v // 2 for k, v in budgets.items() if k[0] != "ppo"}
    runs_dir = opts.out / "runs"
    if not opts.report_only:
        shutil.rmtree(runs_dir, ignore_errors=True)
        for (agent, env_id), steps in budgets.items():
            for seed in range(1, opts.seeds + 1):
                module, args = make_args(agent, env_id, seed, steps, runs_dir)
                s = module.train(args)
                print(
                    f"{agent:12s} {env_id:29s} seed {seed}: eval {s['eval']['mean_return']:.4f} "
                    f"random {s['random_eval']['mean_return']:.4f} ({s['seconds']:.0f} s training)"
                )
    report(runs_dir, opts.out)


def load_runs(runs_dir: Path) -> dict[tuple[str, str], list[dict]]:
    """Every finished run under ``runs_dir``, re-evaluated from its latest checkpoint."""
    runs: dict[tuple[str, str], list[dict]] = {}
    for run_dir in sorted(p for p in runs_dir.iterdir() if (p / RUN_INFO).is_file()):
        info = read_run_info(run_dir)
        ckpt = find_checkpoint(run_dir)
        module = MODULES[info["agent"]]
        meta = ckpt.with_suffix(".state.pt") if ckpt.suffix == ".zip" else ckpt
        state = load_checkpoint(meta)["state"]
        if module is lm_ppo:
            summary = lm_ppo_evals(run_dir, ckpt)
            args = summary["args"]
        else:
            policy, args = module.load_policy(ckpt)
            evaluate = partial(
                evaluate_policy,
                env_id=args.env_id,
                episodes=EVAL_EPISODES,
                seed=EVAL_SEED,
                env_kwargs=module.env_kwargs(args),
            )
            summary = {
                "args": args,
                "eval": summarize(evaluate(policy), args.env_id),
                "random_eval": summarize(evaluate(RandomPolicy(EVAL_SEED)), args.env_id),
            }
        summary.update(
            agent=info["agent"],
            checkpoint=ckpt,
            curve=state["curve"],
            seconds=state["seconds"],
            global_step=state["global_step"],
        )
        runs.setdefault((info["agent"], args.env_id), []).append(summary)
    return runs


def lm_ppo_evals(run_dir: Path, ckpt: Path) -> dict[str, Any]:
    """LM-PPO's policy, its SFT start and random tokens, greedy decoding on the test split."""
    model, args = lm_ppo.load_model(ckpt)
    sft = load_checkpoint(run_dir / lm_ppo.SFT_FILE)
    sft_model = policy_from_config(sft["model_config"])
    sft_model.load_state_dict(sft["policy"])
    kwargs = {**lm_ppo.env_kwargs(args), "split": "test"}

    def greedy_eval(model: Any) -> dict[str, Any]:
        episodes = evaluate_model(model.eval(), args.env_id, kwargs, EVAL_EPISODES, EVAL_SEED)
        return summarize(episodes, args.env_id)

    venv = make_venv(args.env_id, EVAL_EPISODES, kwargs)
    seeds = list(range(EVAL_SEED, EVAL_SEED + EVAL_EPISODES))
    rnd = run_rewriter(venv, random_rewriter(TokenSpace.of(venv), EVAL_SEED), seeds)
    venv.close()
    return {
        "args": args,
        "eval": greedy_eval(model),
        "sft_eval": greedy_eval(sft_model),
        "random_eval": summarize(rnd, args.env_id),
    }


def baselines(env_ids: list[str]) -> dict[tuple[str, str], dict[str, Any]]:
    """Greedy, random and PEZ (ImageInversion; N/A on the rewrite ids) on every env's evaluation
    episodes."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    seeds = list(range(EVAL_SEED, EVAL_SEED + EVAL_EPISODES))
    for env_id in env_ids:
        kwargs = split_kwargs(env_id)
        episodes = greedy.evaluate(env_id, EVAL_EPISODES, EVAL_SEED, kwargs, batch=EVAL_EPISODES)
        rows[("greedy", env_id)] = summarize(episodes, env_id)
        if env_id == TOKENS_ID:  # random tokens until EOS or the limit, as LM-PPO's summary
            venv = make_venv(env_id, EVAL_EPISODES, kwargs)
            episodes = run_rewriter(venv, random_rewriter(TokenSpace.of(venv), EVAL_SEED), seeds)
            venv.close()
        else:
            episodes = random_agent.evaluate(env_id, EVAL_EPISODES, EVAL_SEED, kwargs)
        rows[("random", env_id)] = summarize(episodes, env_id)
        if env_id.startswith("ImageInversion"):
            episodes = pez.evaluate(env_id, EVAL_EPISODES, EVAL_SEED, kwargs, steps=PEZ_STEPS)
            rows[("pez", env_id)] = summarize(episodes, env_id)
        else:
            rows[("pez", env_id)] = {"note": PEZ_NOTE}
    return rows


def report(runs_dir: Path, out: Path) -> None:
    """CSV of every curve and evaluation, the PNG, and the markdown table (with the headline)."""
    runs = load_runs(runs_dir)
    base = baselines(SHAPES_IDS)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "learning_curves.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["agent", "env_id", "split", "seed", "series", "env_steps", "seconds",
             "episodic_return", "note"]
        )  # fmt: skip
        for (agent, env_id), summaries in runs.items():
            split = eval_split(env_id) or ""
            trained_on = "train" if split else ""  # every agent trains on the train split
            for s in summaries:
                seed = s["args"].seed
                writer.writerows(
                    (agent, env_id, trained_on, seed, "train", step, f"{t:.2f}", f"{r:.5f}", "")
                    for step, r, t in s["curve"]
                )
                row = (env_id, split, seed, "eval", s["global_step"], f"{s['seconds']:.2f}")
                writer.writerow((agent, *row, f"{s['eval']['mean_return']:.5f}", "greedy policy"))
                if "sft_eval" in s:
                    ret = f"{s['sft_eval']['mean_return']:.5f}"
                    writer.writerow((f"{agent} (SFT start)", *row, ret, "greedy decoding"))
        for (agent, env_id), r in base.items():
            ret = f"{r['mean_return']:.5f}" if "mean_return" in r else ""
            split = eval_split(env_id) or ""
            writer.writerow((agent, env_id, split, "", "eval", 0, 0, ret, r.get("note", "")))
    plot(runs, base, out / "learning_curves.png")
    table = markdown(runs, base)
    if HEADLINE in runs:
        table += "\n\n" + headline(runs[HEADLINE])
    (out / "learning_curves.md").write_text(table + "\n")
    print(table)
    print(f"\nwrote {out}/learning_curves.csv, .png, .md")


def plot(
    runs: dict[tuple[str, str], list[dict]],
    base: dict[tuple[str, str], dict[str, Any]],
    path: Path,
) -> None:
    """One panel per env: mean return vs env steps with a 95% band over seeds, per agent.

    The baselines' evaluation returns are horizontal lines (random grey, greedy black, PEZ
    dotted red); PEZ is named in the title as N/A on the rewrite ids.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = [e for e in SHAPES_IDS if any(k[1] == e for k in [*runs, *base])]
    fig, axes = plt.subplots(1, len(envs), figsize=(5 * len(envs), 3.8), dpi=90, squeeze=False)
    for ax, env_id in zip(axes[0], envs, strict=True):
        for (agent, e), summaries in runs.items():
            if e != env_id:
                continue
            color = f"C{list(MODULES).index(agent)}"  # one colour per agent in every panel
            curves = [np.array([p[:2] for p in s["curve"]]) for s in summaries]
            grid = np.linspace(0, min(c[-1, 0] for c in curves), 200)
            mean, half = band(curves, grid)
            ax.plot(grid, mean, color=color, label=f"{agent} ({len(curves)} seeds)")
            ax.fill_between(grid, mean - half, mean + half, color=color, alpha=0.2)
            if "sft_eval" in summaries[0]:
                sft = np.mean([s["sft_eval"]["mean_return"] for s in summaries])
                ax.axhline(sft, color=color, ls=":", label=f"{agent} SFT start (eval)")
        lines = (("random", ("gray", "--")), ("greedy", ("black", "-.")), ("pez", ("red", ":")))
        for agent, style in lines:
            r = base.get((agent, env_id))
            if r is not None and "mean_return" in r:
                label = f"{agent} baseline (eval)"
                ax.axhline(r["mean_return"], color=style[0], ls=style[1], label=label)
        split = eval_split(env_id)
        title = env_id + (f"  [eval: {split} split]" if split else "")
        pez_row = base.get(("pez", env_id), {})
        note = f"\nPEZ: {pez_row['note']}" if "note" in pez_row else ""
        ax.set(title=f"{title}{note}", xlabel="environment steps")
        ax.set_ylabel("episodic return (training curve; lines: eval)")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def markdown(
    runs: dict[tuple[str, str], list[dict]], base: dict[tuple[str, str], dict[str, Any]]
) -> str:
    """Final greedy evaluation per (agent, env), mean +- 95% over seeds, then the baselines."""
    lines = [
        f"| env | split | agent | seeds | env steps | train s | eval return ({EVAL_EPISODES} eps) "
        "| random |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for env_id in SHAPES_IDS:
        split = eval_split(env_id) or "-"
        rnd = base.get(("random", env_id))
        rnd_text = f"{rnd['mean_return']:.4f} +- {rnd['ci95']:.4f}" if rnd else "-"
        for (agent, e), ss in runs.items():
            if e != env_id:
                continue
            prefix = f"| {env_id} | {split} |"
            steps, secs = ss[0]["global_step"], np.mean([s["seconds"] for s in ss])
            for name, key in ((agent, "eval"), (f"{agent} (SFT start)", "sft_eval")):
                if key not in ss[0]:
                    continue
                ev = [s[key]["mean_return"] for s in ss]
                spread = ci95(ev) if len(ev) > 1 else 0.0
                lines.append(
                    f"{prefix} {name} | {len(ss)} | {steps} | {secs:.0f} | "
                    f"{np.mean(ev):.4f} +- {spread:.4f} | {rnd_text} |"
                )
        for agent in ("greedy", "random", "pez"):
            r = base.get((agent, env_id))
            if r is None:
                continue
            score = r.get("note") or f"{r['mean_return']:.4f} +- {r['ci95']:.4f}"
            lines.append(
                f"| {env_id} | {split} | {agent} (baseline) | - | - | - | {score} | {rnd_text} |"
            )
    lines += [
        "",
        "Trained agents: mean over seeds of the final greedy policy's return, +- the 95% CI over "
        "seeds; baselines: +- the 95% CI over episodes. Every row of an env uses the same "
        f"{EVAL_EPISODES} episodes (seeds {EVAL_SEED} + i).",
    ]
    return "\n".join(lines)


def headline(summaries: list[dict]) -> str:
    """REINFORCE on ImageInversion-Shapes-v0 against the best achievable similarity.

    Besides the ratio to the best, reports the fraction of the gap between the random agent and
    the best that the policy closes, since a random prompt of candidate words already scores high.
    """
    env_id = HEADLINE[1]
    seeds = list(range(EVAL_SEED, EVAL_SEED + EVAL_EPISODES))
    caption, oracle = best_achievable(env_id, seeds)
    best, rnd = caption.mean(), summaries[0]["random_eval"]["mean_return"]
    lines = [
        f"REINFORCE on {env_id}, {EVAL_EPISODES} eval episodes: best achievable similarity "
        f"(target caption) {best:.4f}, best candidate subset {oracle.mean():.4f}, random agent "
        f"{rnd:.4f}; 90% of best = {0.9 * best:.4f}"
    ]
    for s in summaries:
        sim, args = s["eval"]["mean_final_similarity"], s["args"]
        curve = np.array(s["curve"])
        k = max(1, len(curve) // 25)
        hit = np.flatnonzero(trailing_mean(curve[:, 1], k)[k - 1 :] >= 0.9 * best)
        when = "not reached"
        if len(hit):
            step, seconds = curve[hit[0] + k - 1, 0], curve[hit[0] + k - 1, 2]
            when = f"{seconds:.0f} s ({int(step)} steps)"
        lines.append(
            f"- seed {args.seed}: greedy similarity {sim:.4f} = {100 * sim / best:.1f}% of best "
            f"({100 * sim / oracle.mean():.1f}% of the subset oracle; "
            f"{100 * (sim - rnd) / (best - rnd):.0f}% of the random-to-best gap) after "
            f"{s['seconds']:.0f} s of training; the training curve (moving mean of {k} updates) "
            f"crossed 90% of best at {when}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
