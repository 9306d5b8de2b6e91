"""The SFT stage of LM-PPO: prompt pairs and teacher-forced fine-tuning (Promptist, Sec. 2.1).

Pairs are ``{"source": x, "target": y}`` lines of a JSONL file (``--sft PAIRS.jsonl``). The
shapes world makes its own: for each plain training prompt, every modifier of the bank is
appended and scored with the env's backend and reward config on fixed seeds, then every
combination of 2 to ``max_modifiers`` of the ``top_k`` best single modifiers; the target is the
best rewrite found (the plain prompt itself when nothing helps). This stands in for Promptist's
human-engineered Lexica prompts, so the whole pipeline runs offline.

Training maximises ``log p(y | x)`` with teacher forcing on ``x [SEP] y [EOS]`` (the token
env's form of Promptist's ``"[x] Rephrase:[y]"``); the loss counts only the target tokens.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from prompt_gym.agents.lm_ppo.models import Batch, response_logits
from torch import nn

from prompt_gym.backends import RewardBackend
from prompt_gym.envs.prompt_rewrite import SEPARATOR
from prompt_gym.envs.rewrite_reward import RewriteJudge


# ===================================================================================== pairs
def read_pairs(path: str | Path) -> list[tuple[str, str]]:
    """``(source, target)`` pairs of a JSONL file.

    Raises:
        ValueError: If the file is missing, empty, or a line lacks ``source``/``target`` strings.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"SFT pair file {path} does not exist")
    pairs = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{n}: not JSON ({err.msg})") from err
        if not isinstance(row, dict) or not all(
            isinstance(row.get(k), str) for k in ("source", "target")
        ):
            raise ValueError(f'{path}:{n}: expected {{"source": str, "target": str}}, got {line!r}')
        pairs.append((row["source"], row["target"]))
    if not pairs:
        raise ValueError(f"SFT pair file {path} has no pairs")
    return pairs


def write_pairs(pairs: Sequence[tuple[str, str]], path: str | Path) -> Path:
    """Write pairs as JSONL; return the path."""
    path = Path(path)
    lines = [json.dumps({"source": s, "target": t}) for s, t in pairs]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def best_rewrites(
    backend: RewardBackend,
    prompts: Sequence[str],
    modifiers: Sequence[str],
    reward: str = "promptist-v1",
    seeds: Sequence[int] = (0, 1),
    max_modifiers: int = 3,
    top_k: int = 5,
) -> list[tuple[str, float]]:
    """The best-scoring modifier combination of each prompt: ``(rewrite, reward)``.

    Two batched backend calls: all single modifiers of all prompts, then all combinations of
    2 to ``max_modifiers`` of each prompt's ``top_k`` best single modifiers.
    """
    judge = RewriteJudge(backend, reward, len(seeds))
    seeds = [int(s) for s in seeds]

    def score(rewrites: list[tuple[str, str]]) -> list[float]:
        prompts_, seeds_ = [], []
        for source, y in rewrites:
            p, s = judge.requests(source, y, seeds)
            prompts_ += p
            seeds_ += s
        result = backend.score(prompts_, seeds_, aesthetic=judge.needs_aesthetic)
        width = 2 * len(seeds)
        return [
            judge.judge(rewrites[i][0], _rows(result, i * width, (i + 1) * width))["reward"]
            for i in range(len(rewrites))
        ]

    singles = [(p, [p + SEPARATOR + m for m in modifiers]) for p in prompts]
    flat = [(p, y) for p, ys in singles for y in [p, *ys]]
    values = np.array(score(flat)).reshape(len(prompts), len(modifiers) + 1)
    combos: list[tuple[str, str]] = []
    owners: list[int] = []
    for i, p in enumerate(prompts):
        ranked = [int(j) for j in np.argsort(-values[i, 1:], kind="stable")[:top_k]]
        for size in range(2, max_modifiers + 1):
            for combo in itertools.combinations(ranked, size):
                combos.append((p, SEPARATOR.join([p, *(modifiers[j] for j in combo)])))
                owners.append(i)
    combo_values = score(combos) if combos else []
    best, best_value = [], []
    for i, p in enumerate(prompts):
        j = int(values[i].argmax())  # column 0 is the plain prompt
        best.append(p if j == 0 else p + SEPARATOR + modifiers[j - 1])
        best_value.append(float(values[i, j]))
    for (_, y), owner, v in zip(combos, owners, combo_values, strict=True):
        if v > best_value[owner]:
            best[owner], best_value[owner] = y, v
    return list(zip(best, best_value, strict=True))


def _rows(result: Any, start: int, stop: int) -> Any:
    from prompt_gym.envs.core import slice_result

    return slice_result(result, start, stop)


def shapes_pairs(
    backend: RewardBackend,
    prompts: Sequence[str],
    modifiers: Sequence[str],
    reward: str = "promptist-v1",
    **kwargs: Any,
) -> list[tuple[str, str]]:
    """SFT pairs ``(plain prompt, best rewrite)`` for the shapes world (see the module doc)."""
    found = best_rewrites(backend, prompts, modifiers, reward, **kwargs)
    return [(p, y) for p, (y, _) in zip(prompts, found, strict=True)]


# ===================================================================================== training
@dataclass
class SFTData:
    """Tokenised pairs: queries ``x + [SEP]`` and targets ``y + [EOS]``."""

    queries: list[list[int]]
    targets: list[list[int]]


def tokenize_pairs(
    pairs: Sequence[tuple[str, str]],
    tokenizer: Any,
    sep_id: int,
    max_source_tokens: int,
    max_new_tokens: int,
) -> SFTData:
    """Encode pairs in the token env's id space; targets longer than the env allows are cut.

    Raises:
        ValueError: If a source is longer than the env's ``max_source_tokens``.
    """
    queries, targets = [], []
    for source, target in pairs:
        q = tokenizer.encode(source)
        if len(q) > max_source_tokens:
            raise ValueError(
                f"SFT source has {len(q)} tokens, over max_source_tokens={max_source_tokens}: "
                f"{source!r}"
            )
        y = [*tokenizer.encode(target), tokenizer.eos_token_id][:max_new_tokens]
        queries.append([*q, sep_id])
        targets.append(y)
    return SFTData(queries, targets)


def sft_loss(
    model: nn.Module, data: SFTData, index: Sequence[int], vocab_size: int
) -> torch.Tensor:
    """Mean negative log-likelihood per target token of the pairs ``index``."""
    batch = Batch(
        [data.queries[i] for i in index],
        [data.targets[i] for i in index],
        vocab_size,
        next(model.parameters()).device,
    )
    logits = response_logits(model, batch, vocab_size)
    nll = nn.functional.cross_entropy(
        logits.reshape(-1, vocab_size), batch.responses.reshape(-1), reduction="none"
    ).view_as(batch.response_mask)
    return (nll * batch.response_mask).sum() / batch.response_mask.sum()


def train_sft(
    model: nn.Module,
    data: SFTData,
    vocab_size: int,
    steps: int,
    batch_size: int,
    learning_rate: float,
    weight_decay: float = 0.1,
    adam_eps: float = 1e-6,
    seed: int = 0,
    log: Any = None,
) -> list[float]:
    """Teacher-forced fine-tuning (AdamW, betas 0.9/0.999 as Promptist); returns the loss curve.

    Args:
        log: Optional callable ``log(step, loss)``.
    """
    if steps < 0 or batch_size < 1:
        raise ValueError("sft steps must be >= 0 and the batch size >= 1")
    model.train()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=learning_rate, weight_decay=weight_decay, eps=adam_eps
    )
    rng = np.random.default_rng(seed)
    losses = []
    for step in range(steps):
        index = rng.choice(
            len(data.queries), size=min(batch_size, len(data.queries)), replace=False
        )
        loss = sft_loss(model, data, index.tolist(), vocab_size)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
        if log is not None:
            log(step, losses[-1])
    model.eval()
    return losses


@torch.no_grad()
def eval_sft_loss(model: nn.Module, data: SFTData, vocab_size: int, batch_size: int = 64) -> float:
    """Mean per-token NLL over all pairs."""
    model.eval()
    total, count = 0.0, 0.0
    for start in range(0, len(data.queries), batch_size):
        index = list(range(start, min(len(data.queries), start + batch_size)))
        n = sum(len(data.targets[i]) for i in index)
        total += sft_loss(model, data, index, vocab_size).item() * n
        count += n
    return total / max(count, 1)
