"""The README's keyword-argument table is the registry's, exactly."""

from __future__ import annotations

from pathlib import Path

from prompt_gym.envs.kwargs_table import SAME, family_table, kwargs_markdown

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- kwargs-table:start -->", "<!-- kwargs-table:end -->"


def test_readme_holds_the_generated_table():
    text = README.read_text()
    assert START in text and END in text
    shown = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert shown == kwargs_markdown(), (
        "README kwargs table is stale: paste `python -m prompt_gym.envs.kwargs_table` between "
        "the kwargs-table markers"
    )


def test_a_cell_shows_what_an_id_registers_and_dots_the_defaults():
    rows = {r.split(" | ")[0].strip("| `"): r for r in family_table("ImageInversion").splitlines()}
    head = [c.strip(" `") for c in rows["argument"].strip("|").split("|")]
    n_tokens = [c.strip(" `") for c in rows["n_tokens"].strip("|").split("|")]
    cells = dict(zip(head, n_tokens, strict=True))
    assert cells["default"] == "8" and cells["ImageInversion-Shapes-v0"] == SAME
    assert cells["ImageInversion-Shapes-Hard-v1"] == "24"
    steps = [c.strip() for c in rows["max_episode_steps` (spec)"].strip("|").split("|")]
    assert steps[-1] == "50"  # Hard: 2 * (24 + 1)
