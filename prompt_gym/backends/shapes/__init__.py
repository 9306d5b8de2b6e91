"""The shapes world: a procedural text-to-image world that runs on a CPU in microseconds.

It is a faithful small analog of a diffusion model + CLIP + BLIP stack, built for research
iteration, tutorials and CI:

* :class:`ShapesGenerator` (``render.py``) draws one image per (prompt, seed): coloured shapes,
  sizes, positions, counts, backgrounds and 28 styles. Word choice matters ("sphere" is shaded,
  "ball" has a highlight, "circle" is flat), whatever the prompt leaves open comes from the seed,
  and the seed jitters every image like diffusion noise. See ``vocab.py`` for the vocabulary.
* :class:`ShapesScorer` (``scorer.py``) embeds images and texts as unit vectors with a CLIP-like
  modality gap (a matched pair scores about 0.35, unrelated ones about 0.0-0.15) and rates
  aesthetics on 0..10 (``aesthetic.py``: colourfulness, contrast, composition).
* :class:`ShapesCaptioner` (``captioner.py``) writes noisy captions of a target: synonym swaps,
  dropped attributes, filler and junk words.
* :func:`make_targets` (``targets.py``) draws target sets at four difficulty levels
  (:data:`LEVELS`).

Some styles raise the aesthetic while destroying relevance ("rainbow", "neon", "psychedelic",
"dramatic lighting"), so reward hacking is possible and measurable; modifiers interact with the
subject ("dark" helps bright colours and hurts dark ones), so no fixed tag list is best for every
prompt.

>>> from prompt_gym.backends.shapes import ShapesGenerator, ShapesScorer
>>> images = ShapesGenerator(resolution=64).generate(["a red sphere on a blue background"], [0])
>>> scorer = ShapesScorer()
>>> float(scorer.embed_texts(["a red sphere on a blue background"])[0] @ scorer.embed_images(images)[0]) > 0.28
True
"""

from prompt_gym.backends.shapes.captioner import ShapesCaptioner
from prompt_gym.backends.shapes.render import ShapesGenerator
from prompt_gym.backends.shapes.scene import SceneSpec, parse_prompt
from prompt_gym.backends.shapes.scorer import ShapesScorer
from prompt_gym.backends.shapes.targets import LEVELS, make_targets

__all__ = [
    "LEVELS",
    "SceneSpec",
    "ShapesCaptioner",
    "ShapesGenerator",
    "ShapesScorer",
    "make_targets",
    "parse_prompt",
]
