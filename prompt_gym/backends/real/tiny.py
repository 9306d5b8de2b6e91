"""Tiny random-weight versions of the real models, built offline from configs.

The same classes as the real presets (``StableDiffusionPipeline``, ``AutoencoderTiny``, an open_clip
``CLIP``, ``BlipForConditionalGeneration``) with a few thousand to a few million parameters, as in
diffusers' ``get_dummy_components()``. Weights come from a fixed torch seed inside
``torch.random.fork_rng`` (the global RNG is left untouched), so every build is identical.

Tokenizers are built offline too: the CLIP tokenizer from the BPE file open_clip ships (it
reproduces open_clip's token ids), the BLIP tokenizer from a small word list written here.

- generator: UNet ``block_out_channels=(32, 64)``, 2-block ``AutoencoderKL`` (scale factor 2),
  ``CLIPTextModel`` with ``hidden_size=32``; 64x64 images from 32x32 latents.
- scorer: open_clip ``ViT-B-32`` family with width 32-64, 2 layers, 32x32 input, 32-d embeddings.
- preference (PickScore twin): a transformers ``CLIPModel`` with hidden size 32, 2 layers,
  32x32 input, saved with ``save_pretrained`` (with its ``CLIPProcessor``) to a directory that
  the PickScore loader reads back with ``from_pretrained(..., local_files_only=True)``.
- captioner: BLIP with hidden size 32, 2 layers, 32x32 input and a 168-entry WordPiece vocabulary.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

TINY_SEED = 0
TINY_EMBED_DIM = 32
TINY_CLIP_IMAGE_SIZE = 32
TINY_BLIP_IMAGE_SIZE = 32

# Words the tiny BLIP samples captions from (random weights: random words from this list).
_BLIP_WORDS = (
    "a an the of in on with and at near next to under over behind",
    "red green blue yellow orange purple pink black white gray brown gold silver",
    "small large big tiny huge little round square tall short bright dark shiny flat",
    "circle triangle star heart ring cross ball sphere cube box egg disk dot line",
    "cat dog bird horse fish tree flower house car boat mountain river sky sun moon cloud",
    "person man woman child face hand city street road field forest beach sea lake snow",
    "picture photo painting drawing image view scene background foreground center corner",
    "left right top bottom middle edge pattern texture shape object color light shadow",
    "sitting standing lying flying running floating glowing painted drawn made wooden metal",
    "glass stone paper plastic water fire grass sand ice wall floor table chair window door",
    "two three four many some several one single pair group row stack pile",
    "is are has have there this that it its very",
)


@functools.cache
def clip_tokenizer() -> Any:
    """A ``transformers.CLIPTokenizer`` built from open_clip's BPE file (49408 entries).

    Vocabulary: the 256 byte tokens, the same with ``</w>``, the 48894 merges, then
    ``<|startoftext|>`` (49406) and ``<|endoftext|>`` (49407, also padding).
    """
    import gzip

    from open_clip.tokenizer import bytes_to_unicode, default_bpe
    from transformers import CLIPTokenizer

    with gzip.open(default_bpe()) as fh:
        lines = fh.read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 49152 - 256 - 2 + 1]]
    byte_tokens = list(bytes_to_unicode().values())
    vocab = byte_tokens + [t + "</w>" for t in byte_tokens] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(
        vocab={token: i for i, token in enumerate(vocab)}, merges=merges, model_max_length=77
    )


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's global RNG for the block, restoring its state afterwards."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def tiny_sd_pipeline(seed: int = TINY_SEED) -> Any:
    """A tiny ``StableDiffusionPipeline`` (fp32, CPU, safety checker off) with sd-turbo's scheduler."""
    tokenizer = clip_tokenizer()
    unet, vae, text_encoder = _tiny_unet(seed), _tiny_vae(seed), _tiny_text_encoder(seed, tokenizer)
    pipe = turbo_pipeline(unet, vae, text_encoder, tokenizer)
    for module in (unet, vae, text_encoder):
        module.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def turbo_pipeline(unet: Any, vae: Any, text_encoder: Any, tokenizer: Any) -> Any:
    """A ``StableDiffusionPipeline`` of these modules with sd-turbo's scheduler, no safety checker."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _tiny_unet(seed: int) -> Any:
    from diffusers import UNet2DConditionModel

    with _seeded(seed):
        return UNet2DConditionModel(
            block_out_channels=(32, 64),
            layers_per_block=1,
            sample_size=32,
            in_channels=4,
            out_channels=4,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=(2, 4),
            norm_num_groups=32,
        )


def _tiny_vae(seed: int) -> Any:
    from diffusers import AutoencoderKL

    with _seeded(seed):
        return AutoencoderKL(
            block_out_channels=(32, 64),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
            up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
            latent_channels=4,
            norm_num_groups=32,
            sample_size=64,
        )


def _tiny_text_encoder(seed: int, tokenizer: Any) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        hidden_size=32,
        intermediate_size=37,
        layer_norm_eps=1e-5,
        num_attention_heads=4,
        num_hidden_layers=2,
        vocab_size=len(tokenizer),
        max_position_embeddings=77,
    )
    with _seeded(seed):
        return CLIPTextModel(config)


def tiny_taesd(seed: int = TINY_SEED) -> Any:
    """A tiny ``AutoencoderTiny`` matching :func:`tiny_sd_pipeline`'s latents (4 ch, scale 2)."""
    from diffusers import AutoencoderTiny

    with _seeded(seed):
        taesd = AutoencoderTiny(
            encoder_block_out_channels=(16, 16),
            decoder_block_out_channels=(16, 16),
            num_encoder_blocks=(1, 1),
            num_decoder_blocks=(1, 1),
            latent_channels=4,
        )
    return taesd.eval()


def tiny_open_clip(seed: int = TINY_SEED) -> Any:
    """A tiny open_clip ``CLIP`` (``ViT-B-32`` family, 32-d embeddings, 32x32 input), in eval mode."""
    from open_clip.model import CLIP

    with _seeded(seed):
        model = CLIP(
            embed_dim=TINY_EMBED_DIM,
            vision_cfg={
                "image_size": TINY_CLIP_IMAGE_SIZE,
                "layers": 2,
                "width": 64,
                "head_width": 32,
                "patch_size": 8,
            },
            text_cfg={
                "context_length": 77,
                "vocab_size": 49408,
                "width": 32,
                "heads": 4,
                "layers": 2,
            },
        )
    return model.eval()


def tiny_blip(seed: int = TINY_SEED) -> tuple[Any, Any]:
    """A tiny ``BlipForConditionalGeneration`` and its ``BlipProcessor``, built offline."""
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "[ENC]"]
    words = list(dict.fromkeys(" ".join(_BLIP_WORDS).split()))
    vocab = {token: i for i, token in enumerate(special + words)}
    tokenizer = BertTokenizer(
        vocab=vocab, bos_token="[DEC]", additional_special_tokens=["[ENC]"], model_max_length=64
    )
    config = BlipConfig(
        text_config={
            "vocab_size": len(vocab),
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "projection_dim": 32,
            "bos_token_id": vocab["[DEC]"],
            "eos_token_id": vocab["[SEP]"],
            "sep_token_id": vocab["[SEP]"],
            "pad_token_id": vocab["[PAD]"],
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": TINY_BLIP_IMAGE_SIZE,
            "patch_size": 8,
            "projection_dim": 32,
        },
        projection_dim=32,
        image_text_hidden_size=32,
    )
    with _seeded(seed):
        model = BlipForConditionalGeneration(config).eval()
    image_processor = BlipImageProcessor(
        size={"height": TINY_BLIP_IMAGE_SIZE, "width": TINY_BLIP_IMAGE_SIZE}
    )
    return model, BlipProcessor(image_processor=image_processor, tokenizer=tokenizer)


def tiny_pickscore_dir(seed: int = TINY_SEED) -> str:
    """A directory holding a tiny random ``CLIPModel`` and its ``CLIPProcessor`` (PickScore's
    classes), written once per process with ``save_pretrained``; load it with
    ``from_pretrained(path, local_files_only=True)`` as the real PickScore is loaded."""
    return _tiny_pickscore_dir(seed)


@functools.cache
def _tiny_pickscore_dir(seed: int) -> str:
    import tempfile

    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    config = CLIPConfig(
        text_config={
            "vocab_size": 49408,
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
        },
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 37,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": TINY_CLIP_IMAGE_SIZE,
            "patch_size": 8,
        },
        projection_dim=TINY_EMBED_DIM,
    )
    with _seeded(seed):
        model = CLIPModel(config).eval()
    size = {"shortest_edge": TINY_CLIP_IMAGE_SIZE}
    crop = {"height": TINY_CLIP_IMAGE_SIZE, "width": TINY_CLIP_IMAGE_SIZE}
    processor = CLIPProcessor(
        image_processor=CLIPImageProcessor(size=size, crop_size=crop), tokenizer=clip_tokenizer()
    )
    path = tempfile.mkdtemp(prefix="prompt-gym-tiny-pickscore-")
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path
