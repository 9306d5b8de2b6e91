"""A text reward model: ``GPT2ForSequenceClassification(num_labels=1)`` regressing a score.

The head is trained on standardised labels (``(y - mean) / std``); :meth:`TextRewardModel.predict`
returns scores in the label's units. A model directory holds the transformers model and
tokenizer (``save_pretrained``) and ``reward_model.json`` (target, label mean and std, the
held-out metrics); :meth:`TextRewardModel.load` reads it back with
``from_pretrained(path, local_files_only=True)``.

Bases: ``tiny`` (a 2-layer, 64-wide GPT-2 config with random weights and the offline GPT-2-class
tokenizer :func:`~prompt_gym.envs.tokenizers.tiny_gpt2_tokenizer`; for the shapes world and
tests), or a local GPT-2-class directory / hub id in the local cache (``gpt2``; BeautifulPrompt
used BLOOM-1b1).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from prompt_gym.reward_models.data import check_target

META_FILE = "reward_model.json"
TINY = "tiny"
MAX_LENGTH = 128


def _tiny(tokenizer: Any) -> Any:
    from transformers import GPT2Config, GPT2ForSequenceClassification

    config = GPT2Config(
        n_layer=2,
        n_embd=64,
        n_head=2,
        n_positions=MAX_LENGTH,
        vocab_size=len(tokenizer),
        num_labels=1,
        problem_type="regression",
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return GPT2ForSequenceClassification(config)


class TextRewardModel:
    """A text regressor of one target score.

    Args:
        model: A ``GPT2ForSequenceClassification`` with one label.
        tokenizer: Its tokenizer (a pad token set).
        target: ``aesthetic`` or ``pickscore``.
        mean: Label mean (the head predicts standardised labels).
        std: Label standard deviation.
        metrics: Held-out metrics of its training, if any.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        target: str,
        mean: float = 0.0,
        std: float = 1.0,
        metrics: dict[str, float] | None = None,
    ) -> None:
        check_target(target)
        self.model, self.tokenizer, self.target = model.eval(), tokenizer, target
        self.mean, self.std = float(mean), float(std)
        self.metrics = dict(metrics or {})

    @classmethod
    def build(cls, base: str, target: str, seed: int = 0) -> TextRewardModel:
        """A fresh model on ``base`` (``tiny`` or a GPT-2-class directory / cached hub id).

        Raises:
            ValueError: If ``base`` is not available locally.
        """
        import torch
        from transformers import AutoTokenizer, GPT2ForSequenceClassification

        torch.manual_seed(seed)
        model = None
        if base == TINY:
            from prompt_gym.envs.tokenizers import tiny_gpt2_tokenizer

            tokenizer = tiny_gpt2_tokenizer().tokenizer
        else:
            offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
            try:
                tokenizer = AutoTokenizer.from_pretrained(base, local_files_only=offline)
                model = GPT2ForSequenceClassification.from_pretrained(
                    base, num_labels=1, problem_type="regression", local_files_only=offline
                )
            except OSError as err:
                raise ValueError(
                    f"reward-model base {base!r} is not available locally ({err}); pass a local "
                    "GPT-2-class directory or base='tiny'"
                ) from err
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "right"
        if model is None:
            model = _tiny(tokenizer)
        model.config.pad_token_id = tokenizer.pad_token_id
        return cls(model, tokenizer, target)

    def encode(self, texts: Sequence[str]) -> dict[str, Any]:
        """Padded token tensors of ``texts`` (truncated to 128 tokens); an empty text is read as
        the EOS token (an empty rewrite still gets a score)."""
        return self.tokenizer(
            [t or self.tokenizer.eos_token for t in texts],
            padding=True,
            truncation=True,
            max_length=MAX_LENGTH,
            return_tensors="pt",
        )

    def forward(self, texts: Sequence[str]) -> Any:
        """Standardised predictions as a ``(N,)`` tensor, with gradients (for training)."""
        batch = self.encode(texts)
        device = next(self.model.parameters()).device
        out = self.model(**{k: v.to(device) for k, v in batch.items()})
        return out.logits[:, 0]

    def predict(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
        """Predicted scores in the label's units, ``float64 (N,)``."""
        import torch

        if not len(texts):
            return np.zeros(0)
        self.model.eval()
        out = []
        with torch.inference_mode():
            for a in range(0, len(texts), batch_size):
                out.append(self.forward(texts[a : a + batch_size]).float().cpu().numpy())
        return np.concatenate(out).astype(np.float64) * self.std + self.mean

    def save(self, path: str | Path) -> Path:
        """Write the model directory (see the module docstring); return it."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        meta = {"target": self.target, "mean": self.mean, "std": self.std, "metrics": self.metrics}
        (path / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> TextRewardModel:
        """A model directory written by :meth:`save`.

        Raises:
            ValueError: If ``path`` is not a reward-model directory.
        """
        from transformers import AutoTokenizer, GPT2ForSequenceClassification

        path = Path(path)
        if not (path / META_FILE).is_file():
            raise ValueError(
                f"{path}: not a reward model (no {META_FILE}); train one with `prompt-gym train-rm`"
            )
        meta = json.loads((path / META_FILE).read_text())
        model = GPT2ForSequenceClassification.from_pretrained(path, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        tokenizer.padding_side = "right"
        return cls(model, tokenizer, meta["target"], meta["mean"], meta["std"], meta["metrics"])
