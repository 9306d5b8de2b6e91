"""Over-optimisation of text-only reward models (BeautifulPrompt on the shapes world; Gao et al. 2022).

Pipeline: export scored modifier rewrites -> train the aesthetic and PickScore text RMs -> LM-PPO
with BeautifulPrompt's settings against ``beautifulprompt-v1`` (the RMs; no image generated) ->
at each checkpoint, sampled rewrites of held-out prompts on fresh seeds scored by the proxy
(the RMs) and by the true image reward (``beautifulprompt-images-v1``), against the KL from the
reference (the SFT model). Writes ``OUT/reward_distillation.json`` and the figure
``docs/reward_distillation.png`` (proxy and true reward vs KL, with the true reward's peak).

    python benchmarks/reward_distillation.py --out runs/distill --png docs/reward_distillation.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from prompt_gym.agents.lm_ppo import distillation
from prompt_gym.agents.lm_ppo.ppo import train


def run(
    out: Path,
    png: Path | None,
    checkpoints: int,
    updates_per: int,
    rm_epochs: int,
    episodes: int,
    seed: int,
) -> dict[str, Any]:
    """The whole pipeline; returns the figures written to ``out/reward_distillation.json``."""
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = distillation.export_data(out / "data", seeds=4, per_prompt=6, seed=seed)
    rms, rm_metrics = distillation.train_rms(out / "data", out / "rms", epochs=rm_epochs, seed=seed)
    print(json.dumps(rm_metrics), flush=True)
    t_rm = time.perf_counter() - t0
    args = distillation.bp_args(
        rms,
        logdir=str(out / "runs"),
        seed=seed,
        eval_episodes=1,
        total_timesteps=10**9,
        save_every=10**6,
    )
    points: list[dict[str, Any]] = []
    run_dir = None
    for k in range(1, checkpoints + 1):
        args.total_updates = k * updates_per
        result = train(args, resume=run_dir)  # continues the run: same optimiser, KL, scaling
        run_dir = result["run_dir"]
        if k == 1:  # the SFT model itself: the reference point (KL 0)
            ev = distillation.evaluate_checkpoint(result["checkpoint"], rms, episodes, which="sft")
            points.append({**ev, "updates": 0})
            print(json.dumps(points[-1]), flush=True)
        ev = distillation.evaluate_checkpoint(result["checkpoint"], rms, episodes)
        points.append({**ev, "updates": args.total_updates})
        print(json.dumps(points[-1]), flush=True)
    peak = max(points, key=lambda p: p["true_reward"])
    figures = {
        "rows": rows,
        "rm_metrics": rm_metrics,
        "points": points,
        "true_peak": peak,
        "seconds": time.perf_counter() - t0,
        "seconds_data_and_rms": t_rm,
        "settings": {
            "checkpoints": checkpoints,
            "updates_per": updates_per,
            "rm_epochs": rm_epochs,
            "episodes": episodes,
            "seed": seed,
        },
    }
    (out / "reward_distillation.json").write_text(json.dumps(figures, indent=2) + "\n")
    if png is not None:
        plot(points, peak, png)
    return figures


def plot(points: list[dict[str, Any]], peak: dict[str, Any], png: Path) -> None:
    """Proxy and true reward against KL from the reference, the true peak marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kl = [p["kl"] for p in points]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(
        kl, [p["proxy_reward"] for p in points], "o-", label="proxy: text RMs (beautifulprompt-v1)"
    )
    ax.plot(
        kl,
        [p["true_reward"] for p in points],
        "s-",
        label="true: images (beautifulprompt-images-v1)",
    )
    ax.axvline(peak["kl"], color="gray", ls="--", lw=1)
    ax.annotate(
        f"true peak {peak['true_reward']:.2f}\nat KL {peak['kl']:.1f}",
        (peak["kl"], peak["true_reward"]),
        textcoords="offset points",
        xytext=(8, -30),
    )
    ax.set_xlabel("KL(pi || pi_SFT) per rewrite (nats)")
    ax.set_ylabel("R(x, y) - R(x, x)")
    ax.set_title("LM-PPO against text reward models, shapes world")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=120)
    plt.close(fig)


def main() -> None:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/reward_distillation"))
    parser.add_argument("--png", type=Path, default=Path("docs/reward_distillation.png"))
    parser.add_argument("--checkpoints", type=int, default=8)
    parser.add_argument("--updates-per", type=int, default=8)
    parser.add_argument("--rm-epochs", type=int, default=30)
    parser.add_argument("--episodes", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    a = parser.parse_args()
    run(a.out, a.png, a.checkpoints, a.updates_per, a.rm_epochs, a.episodes, a.seed)


if __name__ == "__main__":
    main()
