"""The measured size of each shapes-world v3 property (the figures in the README and docstrings).

    python benchmarks/shapes_v3_properties.py

Similarity = mean image-image cosine of a prompt's renders (16 seeds) to its target's renders
(8 other seeds), over 24 target captions of each level (set seed 3), world v3 at 64 px:

* seed noise: per level, the std over seed pairs of the similarity of a caption's renders to
  each other, and the mean (the ceiling an inverter can reach on fresh seeds);
* every token matters / junk: the change of similarity when junk or stop words are added;
* dilution: the change when the caption is padded with 8, 24 and 48 words "a";
* binding and order: object and background colours swapped, the caption reversed;
* world v2 for comparison (junk changes nothing there).
"""

from __future__ import annotations

import numpy as np

from prompt_gym.backends import make_backend
from prompt_gym.backends.shapes.targets import LEVELS, make_targets

EVAL, TARGET = list(range(16)), list(range(1000, 1008))


def similarity(backend, prompt: str, caption: str) -> float:
    target = backend.embed_images(backend.generate([caption] * len(TARGET), TARGET))
    images = backend.score([prompt] * len(EVAL), EVAL).image_embeds
    return float((images @ target.T).mean())


def swap_colours(caption: str) -> str:
    from prompt_gym.backends.shapes.scene import parse_prompt

    spec = parse_prompt(caption)
    if spec.colour is None or spec.background is None:
        return caption
    return (
        caption.replace(spec.colour, "@")
        .replace(spec.background, spec.colour)
        .replace("@", spec.background)
    )


REWRITES = {
    "+ ', 8k'": lambda c: f"{c}, 8k",
    "+ ', trending on artstation, 8k, masterpiece'": lambda c: (
        f"{c}, trending on artstation, 8k, masterpiece"
    ),
    "'the ' +": lambda c: f"the {c}",
    "padded with 8 x 'a'": lambda c: "a " * 8 + c,
    "padded with 24 x 'a'": lambda c: "a " * 24 + c,
    "padded with 48 x 'a'": lambda c: "a " * 48 + c,
    "colours swapped": swap_colours,
    "reversed": lambda c: " ".join(reversed(c.replace(",", "").split())),
}


def main() -> None:
    v3, v2 = make_backend("shapes-v3"), make_backend("shapes")
    print("| level | seed-to-seed similarity (mean ± std) | " + " | ".join(REWRITES) + " |")
    print("|---|---:|" + "---:|" * len(REWRITES))
    for level in LEVELS:
        caps = [t.caption for t in make_targets(level, 24, 3, 16, world=3)]
        pair = []
        for c in caps:
            e = v3.score([c] * 16, EVAL).image_embeds
            s = e @ e.T
            pair += s[np.triu_indices(16, 1)].tolist()
        base = np.array([similarity(v3, c, c) for c in caps])
        cells = []
        for fn in REWRITES.values():
            gain = np.array([similarity(v3, fn(c), c) for c in caps]) - base
            cells.append(f"{gain.mean():+.4f} ({(gain < 0).mean():.0%} lower)")
        print(f"| {level} | {np.mean(pair):.4f} ± {np.std(pair):.4f} | " + " | ".join(cells) + " |")
    caps = [t.caption for t in make_targets("style", 24, 3, 16)]
    junk = np.array(
        [similarity(v2, f"{c}, trending on artstation, 8k", c) - similarity(v2, c, c) for c in caps]
    )
    print(
        f"world v2, style level, + junk: {junk.mean():+.4f} (max |change| {np.abs(junk).max():.4f})"
    )


if __name__ == "__main__":
    main()
