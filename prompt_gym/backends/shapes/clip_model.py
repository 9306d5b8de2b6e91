"""shapes-clip: a small open_clip ``CLIP`` trained on the shapes world, and its compact tokenizer.

The model is a plain open_clip :class:`open_clip.model.CLIP` built from the config in the shipped
recipe (``prompt_gym/data/shapes_clip.json``): a ViT image tower on 64x64 renders and a causal
transformer text tower, 64-d embeddings. Its weights (``prompt_gym/data/shapes_clip.safetensors``,
fp32, no pickle) are produced by :mod:`prompt_gym.backends.shapes.train_clip`; the recipe records
the seed, the data recipe, the optimiser settings, the measured zero-shot accuracy and the
weights' sha256, which :func:`load_shapes_clip` checks before it reads a tensor.

Compact vocabulary
    The text tower does not embed all 49,408 CLIP BPE tokens: only the BPE tokens of the words
    the shapes world uses (every phrase its parser knows, the captioner's prefixes and synonyms,
    the junk tags), 245 of them, kept in the recipe as their BPE ids. :class:`CompactTokenizer`
    runs open_clip's own BPE and maps each BPE id to its compact id; a BPE token outside the set
    becomes ``<unk>``. The compact ids are ``[kept tokens..., <sot>, <unk>, <eot>]``, so the end
    token is the largest id (open_clip's ``argmax`` pooling finds it) and every id below
    ``sot_token_id`` is a real token: that range is PEZ's projection vocabulary.

Used through :class:`~prompt_gym.backends.real.clip.OpenClipScorer` (the ``shapes-clip`` scorer
preset), so embeddings, preprocessing and PEZ are the open_clip code paths.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

NAME = "shapes-clip"
WEIGHTS_FILE = "shapes_clip.safetensors"
RECIPE_FILE = "shapes_clip.json"
CONTEXT_LENGTH = 32
IMAGE_SIZE = 64
#: The open_clip ``CLIP`` config (``vocab_size`` is filled in from the vocabulary).
MODEL_CONFIG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {
        "image_size": IMAGE_SIZE,
        "layers": 2,
        "width": 64,
        "head_width": 32,
        "patch_size": 8,
    },
    "text_cfg": {"context_length": CONTEXT_LENGTH, "width": 64, "heads": 4, "layers": 2},
}


class ChecksumError(ValueError):
    """The shapes-clip weights do not match the sha256 their recipe records."""


def data_path(name: str) -> Path:
    """Path of a file shipped in ``prompt_gym/data``."""
    return Path(str(resources.files("prompt_gym.data").joinpath(name)))


def shapes_words() -> list[str]:
    """Every word the shapes world's texts are made of, sorted (the vocabulary's source).

    >>> words = shapes_words(); "sphere" in words and "background" in words and "8k" in words
    True
    """
    from prompt_gym.backends.shapes import captioner, vocab
    from prompt_gym.backends.shapes.scene import _PHRASES

    phrases: list[str] = [" ".join(p) for p in _PHRASES]
    phrases += [*vocab.JUNK_PHRASES, *vocab.CAPTION_PREFIXES, "the", "of", "a", "an", ","]
    phrases += [w for options in captioner.SYNONYMS.values() for w in options]
    return sorted({w for phrase in phrases for w in phrase.split()})


def build_vocabulary() -> list[int]:
    """The sorted BPE ids of :func:`shapes_words` under open_clip's tokenizer."""
    from open_clip.tokenizer import SimpleTokenizer

    bpe = SimpleTokenizer()
    return sorted({i for word in shapes_words() for i in bpe.encode(word)})


class CompactTokenizer:
    """open_clip's BPE tokenizer restricted to a kept set of tokens (see the module docstring).

    Called like open_clip's tokenizer: ``tokenizer(texts) -> LongTensor (N, context_length)``,
    ``<sot> tokens <eot>`` then zeros, truncated to the context (the last slot keeps ``<eot>``).

    Args:
        kept: The BPE ids the model embeds, in compact-id order.
        context_length: Tokens per text, ``<sot>`` and ``<eot>`` included.

    >>> tok = CompactTokenizer(build_vocabulary())
    >>> ids = tok(["a red sphere"])[0]
    >>> int(ids[0]) == tok.sot_token_id, tok.decode(ids[1:4].tolist()).strip()
    (True, 'a red sphere')
    """

    def __init__(self, kept: Sequence[int], context_length: int = CONTEXT_LENGTH) -> None:
        from open_clip.tokenizer import SimpleTokenizer

        self.bpe = SimpleTokenizer(context_length=context_length)
        self.kept = [int(i) for i in kept]
        self.context_length = int(context_length)
        self._compact = {b: i for i, b in enumerate(self.kept)}
        self.sot_token_id = len(self.kept)
        self.unk_token_id = len(self.kept) + 1
        self.eot_token_id = len(self.kept) + 2
        self.vocab_size = len(self.kept) + 3

    def encode(self, text: str) -> list[int]:
        """Compact ids of ``text`` (no ``<sot>`` / ``<eot>``)."""
        return [self._compact.get(i, self.unk_token_id) for i in self.bpe.encode(text)]

    def __call__(self, texts: str | Sequence[str], context_length: int | None = None) -> Any:
        """``LongTensor (N, context_length)`` of the texts' compact ids."""
        import torch

        texts = [texts] if isinstance(texts, str) else list(texts)
        n_ctx = int(context_length or self.context_length)
        out = torch.zeros((len(texts), n_ctx), dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [*[self.sot_token_id, *self.encode(text)][: n_ctx - 1], self.eot_token_id]
            out[row, : len(ids)] = torch.tensor(ids)
        return out

    def decode(self, ids: Sequence[int]) -> str:
        """Text of compact ids up to the first ``<eot>`` (the padding after it is not text);
        ``<sot>`` and ``<unk>`` decode to nothing."""
        ids = [int(i) for i in ids]
        ids = ids[: ids.index(self.eot_token_id)] if self.eot_token_id in ids else ids
        return self.bpe.decode([self.kept[i] for i in ids if i < len(self.kept)])


def model_config(vocab_size: int) -> dict[str, Any]:
    """:data:`MODEL_CONFIG` with the text tower's ``vocab_size``."""
    config = json.loads(json.dumps(MODEL_CONFIG))
    config["text_cfg"]["vocab_size"] = int(vocab_size)
    return config


def build_model(config: dict[str, Any]) -> Any:
    """An open_clip ``CLIP`` of ``config`` (random weights from torch's global RNG)."""
    from open_clip.model import CLIP

    return CLIP(**config)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def recipe_files(directory: str | Path | None = None) -> tuple[Path, Path]:
    """``(weights, recipe)`` paths in ``directory`` (default: the shipped ``prompt_gym/data``)."""
    root = Path(directory) if directory is not None else data_path("")
    return root / WEIGHTS_FILE, root / RECIPE_FILE


def read_recipe(path: str | Path | None = None) -> dict[str, Any]:
    """The recipe JSON (default: the shipped one).

    Raises:
        FileNotFoundError: If it is missing (with how to rebuild it).
    """
    path = Path(path or data_path(RECIPE_FILE))
    if not path.is_file():
        raise FileNotFoundError(
            f"no shapes-clip recipe at {path}; rebuild the weights and recipe with "
            "`python -m prompt_gym.backends.shapes.train_clip`"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def load_shapes_clip(
    weights: str | Path | None = None, recipe: str | Path | None = None
) -> tuple[Any, CompactTokenizer, dict[str, Any]]:
    """The trained model (eval mode, CPU, fp32), its tokenizer and its recipe.

    Args:
        weights: A safetensors file (default: the shipped one).
        recipe: Its recipe JSON (default: the shipped one); its ``sha256`` is checked first.

    Raises:
        FileNotFoundError: If a file is missing.
        ChecksumError: If the weights' sha256 differs from the recipe's.
    """
    from safetensors.torch import load_file

    weights = Path(weights or data_path(WEIGHTS_FILE))
    info = read_recipe(recipe)
    if not weights.is_file():
        raise FileNotFoundError(
            f"no shapes-clip weights at {weights}; rebuild the weights and recipe with "
            "`python -m prompt_gym.backends.shapes.train_clip`"
        )
    digest = file_sha256(weights)
    if digest != info["sha256"]:
        raise ChecksumError(
            f"shapes-clip weights {weights} have sha256 {digest}, but the recipe records "
            f"{info['sha256']}: the file is corrupt or from another build; rebuild it with "
            "`python -m prompt_gym.backends.shapes.train_clip`"
        )
    model = build_model(info["config"])
    model.load_state_dict(load_file(str(weights)), strict=True)
    tokenizer = CompactTokenizer(info["vocabulary"], info["config"]["text_cfg"]["context_length"])
    return model.eval(), tokenizer, info


def pixels(images: np.ndarray, mean: Sequence[float], std: Sequence[float]) -> Any:
    """``uint8 (N, 64, 64, 3)`` -> normalised ``float32 (N, 3, 64, 64)`` tensor (training input).

    The same arithmetic as :class:`~prompt_gym.backends.real.clip.OpenClipScorer` at the model's
    own resolution (no resize).
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(255)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
