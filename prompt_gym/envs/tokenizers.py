"""Tokenizers of PromptRewriteTokens: a word-level one over a world's own text, or a Hugging Face one.

The env's default is its backend's world's (``world.tokenizer``, a name :func:`load_tokenizer`
resolves): :data:`~prompt_gym.backends.world.WORD_TOKENIZER` for the shapes world,
:data:`TINY_GPT2` for the ``tiny`` preset, ``gpt2`` for the real presets.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from prompt_gym.backends.world import WORD_TOKENIZER, World, shipped_lines

_WORD = re.compile(r"[a-z0-9']+|,")
EOS, UNK = "<eos>", "<unk>"
GPT2_EOS = "<|endoftext|>"
TINY_GPT2 = "tiny-gpt2"
"""Tokenizer name of :func:`tiny_gpt2_tokenizer`."""


class Tokenizer(Protocol):
    """What the token env needs: ids of the policy's vocabulary and back."""

    vocab_size: int
    eos_token_id: int

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens)."""
        ...

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids`` (special tokens dropped)."""
        ...


class WordTokenizer:
    """A closed word-level vocabulary: id 0 is EOS, id 1 is UNK, then the words in sorted order.

    Args:
        corpus: Texts whose words (lower case, plus ``,``) form the vocabulary.

    >>> tok = WordTokenizer(["a red circle, vivid"])
    >>> tok.decode(tok.encode("A red circle, vivid"))
    'a red circle, vivid'
    >>> tok.vocab_size, tok.eos_token_id
    (7, 0)
    >>> tok.decode(tok.encode("red, red"))
    'red, red'
    """

    def __init__(self, corpus: Iterable[str]) -> None:
        words = sorted({",", *(w for text in corpus for w in _WORD.findall(text.lower()))})
        self.vocab = [EOS, UNK, *words]
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.vocab_size = len(self.vocab)
        self.eos_token_id = 0
        self.unk_token_id = 1

    def encode(self, text: str) -> list[int]:
        """Word ids; unknown words map to UNK."""
        return [self.index.get(w, self.unk_token_id) for w in _WORD.findall(text.lower())]

    def decode(self, ids: Iterable[int]) -> str:
        """Words joined by spaces, commas attached to the word before; EOS and UNK dropped."""
        words = [self.vocab[i] for i in ids if i > self.unk_token_id]
        return " ".join(words).replace(" ,", ",")


class HFTokenizer:
    """Adapter over a ``transformers`` tokenizer (GPT-2 for the real ids).

    Args:
        tokenizer: A ``PreTrainedTokenizer(Fast)`` instance.
    """

    def __init__(self, tokenizer: Any) -> None:
        if tokenizer.eos_token_id is None:
            raise ValueError("the tokenizer has no EOS token; the token env ends episodes on EOS")
        self.tokenizer = tokenizer
        self.vocab_size = len(tokenizer)
        self.eos_token_id = int(tokenizer.eos_token_id)

    def encode(self, text: str) -> list[int]:
        """Token ids without special tokens."""
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, ids: Iterable[int]) -> str:
        """Text with special tokens skipped."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True).strip()


def load_hf_tokenizer(name: str) -> HFTokenizer:
    """Load a Hugging Face tokenizer from the local cache or a directory (never downloads in tests).

    Raises:
        ValueError: If it is not available locally; the message says how to get it.
    """
    import os

    from transformers import AutoTokenizer

    offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
    try:
        return HFTokenizer(AutoTokenizer.from_pretrained(name, local_files_only=offline))
    except OSError as err:
        raise ValueError(
            f"tokenizer {name!r} is not available locally ({err.__class__.__name__}); on a "
            f"connected machine run `prompt-gym download {name}`, pass a local directory, or use "
            "the -Shapes- ids"
        ) from err


TINY_GPT2_VOCAB = 600
"""Vocabulary size of the offline stand-in for GPT-2's tokenizer."""


@functools.lru_cache(maxsize=1)
def tiny_gpt2_tokenizer() -> HFTokenizer:
    """GPT-2's tokenizer class (byte-level BPE) with a tiny vocabulary, built offline.

    The merges are learned from the shipped prompts and modifiers, so every prompt of the real ids
    encodes in a few tokens; the ``tiny`` backend's token env uses it in place of GPT-2's
    50,257-token vocabulary, which cannot be downloaded in tests. Deterministic.
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2TokenizerFast

    corpus = shipped_lines("prompts") + shipped_lines("modifiers") + shipped_lines("targets")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        corpus,
        vocab_size=TINY_GPT2_VOCAB,
        min_frequency=1,
        special_tokens=[GPT2_EOS],
        show_progress=False,
    )
    tokenizer = GPT2TokenizerFast(
        tokenizer_object=bpe._tokenizer, eos_token=GPT2_EOS, bos_token=GPT2_EOS, unk_token=GPT2_EOS
    )
    return HFTokenizer(tokenizer)


def load_tokenizer(name: str, world: World, prompts: Sequence[str]) -> Tokenizer:
    """The tokenizer called ``name``.

    Args:
        name: :data:`~prompt_gym.backends.world.WORD_TOKENIZER` (a :class:`WordTokenizer` over
            the world's prompts, its modifier bank and ``prompts``), :data:`TINY_GPT2`, or a
            Hugging Face name or local directory (:func:`load_hf_tokenizer`).
        world: The env's world.
        prompts: The env's own prompts (part of a word vocabulary).

    Raises:
        ValueError: If a Hugging Face tokenizer is not available locally.
    """
    if name == WORD_TOKENIZER:
        return WordTokenizer([*world.prompts("all"), *world.modifiers(), *prompts])
    if name == TINY_GPT2:
        return tiny_gpt2_tokenizer()
    return load_hf_tokenizer(name)
