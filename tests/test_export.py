"""Score datasets: the backend's recorder, the rewrite exporter, concurrency, damage."""

from __future__ import annotations

import multiprocessing as mp
import pickle

import numpy as np
import pytest

pytest.importorskip("pyarrow")

from prompt_gym.backends import make_backend
from prompt_gym.backends.preference import load_preference
from prompt_gym.backends.reward_backend import RewardBackend
from prompt_gym.export import DatasetError, Recorder, read_dataset, read_rows
from prompt_gym.export.rewrites import export_rewrites, modifier_rewrites
from prompt_gym.export.schema import NAMES, SCHEMA_VERSION, VERSION_KEY


def test_backend_records_every_request_with_its_values(tmp_path) -> None:
    backend = make_backend("shapes", record=str(tmp_path / "ds"))
    prompts = ["a red circle", "a blue cube", "a red circle"]
    first = backend.score(prompts, [0, 1, 0], aesthetic=True)
    second = backend.score(prompts[:2], [0, 1], aesthetic=True)  # cache hits
    backend.close()
    rows = read_rows(tmp_path / "ds")
    assert len(rows) == 5
    assert [r["prompt"] for r in rows] == [*prompts, *prompts[:2]]
    assert [r["seed"] for r in rows] == [0, 1, 0, 0, 1]
    aes = np.concatenate([first.aesthetic, second.aesthetic]).astype(np.float64)
    assert [r["aesthetic"] for r in rows] == aes.tolist()
    assert [r["cache_hit"] for r in rows] == [False, False, False, True, True]
    assert {(r["kind"], r["backend"], r["backend_version"]) for r in rows} == {
        ("request", "shapes", backend.version)
    }
    assert all(r["source"] is None and r["pickscore"] is None for r in rows)


def test_request_rows_without_aesthetic_are_null(tmp_path) -> None:
    backend = make_backend("shapes", record=str(tmp_path))
    backend.score(["a red circle"], [3])
    backend.close()
    (row,) = read_rows(tmp_path)
    assert row["aesthetic"] is None and row["valid"] is True


def test_export_round_trip_equals_the_backend_and_loads_with_datasets(tmp_path) -> None:
    datasets = pytest.importorskip("datasets")
    backend = make_backend("shapes")
    pref = load_preference(backend)
    pairs = modifier_rewrites(["a red circle", "a green star"], ["vivid", "rainbow", "foggy"], 2)
    seeds = [0, 5]
    n = export_rewrites(backend, pairs, seeds, Recorder(tmp_path), preference=pref)
    assert n == len(pairs) * len(seeds)
    rows = read_rows(tmp_path)
    for row in rows:
        x, y, s = row["source"], row["prompt"], row["seed"]
        got = backend.score([y, x], [s, s], aesthetic=True, return_images=True)
        assert row["aesthetic"] == float(got.aesthetic[0])
        assert row["source_aesthetic"] == float(got.aesthetic[1])
        text = backend.embed_texts([x])[0].astype(np.float64)
        assert row["relevance"] == pytest.approx(float(got.image_embeds[0] @ text), abs=1e-9)
        ps = pref.preference([x, x], got.images)
        assert row["pickscore"] == pytest.approx(float(ps[0]), abs=1e-5)
        assert row["source_pickscore"] == pytest.approx(float(ps[1]), abs=1e-5)
        cos = float(got.image_embeds[0].astype(np.float64) @ got.image_embeds[1])
        assert row["image_similarity"] == pytest.approx(cos, abs=1e-9)
    hf = datasets.load_dataset("parquet", data_files=f"{tmp_path}/*.parquet", split="train")
    assert hf.num_rows == len(rows)
    assert list(hf.column_names) == list(NAMES)
    assert hf["pickscore"] == [r["pickscore"] for r in rows]


def _append(path: str, worker: int) -> None:
    rec = Recorder(path, flush_every=50)
    rec.add({"prompt": f"w{worker} r{i}", "seed": i} for i in range(230))
    rec.close()


def test_concurrent_appends_lose_nothing(tmp_path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_append, args=(str(tmp_path), w)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    rows = read_rows(tmp_path)
    assert len(rows) == 4 * 230
    assert {r["prompt"] for r in rows} == {f"w{w} r{i}" for w in range(4) for i in range(230)}
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_a_truncated_file_is_one_clear_error(tmp_path) -> None:
    rec = Recorder(tmp_path)
    rec.add({"prompt": f"p{i}", "seed": i} for i in range(100))
    path = rec.flush()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DatasetError, match=path.name) as err:
        read_dataset(tmp_path)
    assert "truncated" in str(err.value)


def test_another_schema_version_is_refused(tmp_path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"prompt": ["a"], "seed": [0]}).replace_schema_metadata({VERSION_KEY: b"0"})
    pq.write_table(table, tmp_path / "part-1-x.parquet")
    with pytest.raises(DatasetError, match=f"reads '{SCHEMA_VERSION}'"):
        read_dataset(tmp_path)


def test_bad_rows_and_paths_fail_early(tmp_path) -> None:
    rec = Recorder(tmp_path / "d")
    with pytest.raises(ValueError, match="unknown dataset columns"):
        rec.add([{"prompt": "a", "seed": 0, "colour": "red"}])
    with pytest.raises(ValueError, match="needs 'seed'"):
        rec.add([{"prompt": "a"}])
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        Recorder(tmp_path / "f")
    with pytest.raises(DatasetError, match="no dataset here"):
        read_dataset(tmp_path / "empty")


def test_a_pickled_backend_records_to_the_same_dataset(tmp_path) -> None:
    backend = make_backend("shapes", record=str(tmp_path))
    copy = pickle.loads(pickle.dumps(backend))
    backend.score(["a red circle"], [0])
    copy.score(["a blue cube"], [1])
    backend.close()
    copy.close()
    assert sorted(r["prompt"] for r in read_rows(tmp_path)) == ["a blue cube", "a red circle"]
    assert len(list(tmp_path.glob("part-*.parquet"))) == 2


def test_a_backend_without_a_recorder_records_nothing() -> None:
    b = make_backend("shapes")
    assert b.recorder is None
    custom = RewardBackend(b.generator, b.scorer, b.captioner)
    with pytest.raises(ValueError, match="no preference scorer"):
        load_preference(custom)
