"""Smoke test: the diffusion throughput benchmark runs on CPU with the tiny backend."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest.importorskip("diffusers")
pytest.importorskip("open_clip")

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "diffusion_throughput.py"


def _module():
    spec = importlib.util.spec_from_file_location("diffusion_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tiny_benchmark_runs_on_cpu(capsys) -> None:
    bench = _module()
    rows = bench.run("tiny", batch_sizes=(1, 2), taesd=True, compile=False, repeats=1, device="cpu")
    assert [r["batch_size"] for r in rows] == [1, 2]
    for row in rows:
        assert row["images_per_s"] > 0 and row["weights"] == "tiny random"
        assert {"text_encode_ms", "unet_ms", "decode_ms", "clip_ms"} <= set(row)
    out = bench.main(
        ["--backend", "tiny", "--batch-sizes", "2", "--taesd", "off", "--repeats", "1"]
    )
    assert len(out) == 1 and "img/s" in capsys.readouterr().out


def test_backend_throughput_hands_every_argument_to_the_diffusion_benchmark(
    tmp_path: Path, capsys
) -> None:
    spec = importlib.util.spec_from_file_location(
        "backend_throughput", SCRIPT.with_name("backend_throughput.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "rows.json"
    argv = ["--backend", "tiny", "--batch-sizes", "2", "--repeats", "1", "--taesd", "off"]
    assert module.main([*argv, "--json", str(out)]) == 0
    rows = json.loads(out.read_text())
    assert [r["batch_size"] for r in rows] == [2] and rows[0]["taesd"] is False
    assert "img/s" in capsys.readouterr().out
