"""Batch jobs (`sog.distributed.batch`): several scenes, or a folder of them, into one output folder, one task per
scene; each output the bytes a single `sog compress` writes; every destination checked before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sog.cli import main
from sog.datasets import synthetic_scene
from sog.io import write_ply


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("batch") / "in"
    folder.mkdir()
    write_ply(synthetic_scene(600, seed=1), folder / "a.ply")
    write_ply(synthetic_scene(500, seed=2), folder / "b.ply")
    (folder / "notes.txt").write_text("not a scene")
    return folder


def test_a_folder_of_scenes_becomes_one_sog_each_with_single_run_bytes(inputs, tmp_path, capsys):
    assert main(["compress", str(inputs), str(tmp_path / "out"), "--sort", "morton", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [Path(s["output"]).name for s in summary["scenes"]] == ["a.sog", "b.sog"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.sog", "b.sog"]
    assert main(["compress", str(inputs / "b.ply"), str(tmp_path / "single.sog"), "--sort", "morton", "-q"]) == 0
    assert (tmp_path / "out" / "b.sog").read_bytes() == (tmp_path / "single.sog").read_bytes()


def test_several_inputs_with_lod_become_streamed_sog_folders(inputs, tmp_path, capsys):
    assert main(["compress", str(inputs / "a.ply"), str(inputs / "b.ply"), str(tmp_path / "out"), "--lod", "1",
                 "--chunk-size", "300", "--sort", "morton", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [s["count"] for s in summary["scenes"]] == [600, 500]
    for name in ("a", "b"):
        meta = json.loads((tmp_path / "out" / name / "lod-meta.json").read_text())
        assert meta["lodLevels"] == 1 and len(meta["filenames"]) >= 2


def test_every_destination_is_checked_before_any_work(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.sog").write_text("mine")
    assert main(["compress", str(inputs), str(out), "--sort", "morton", "-q"]) == 2
    assert "b.sog already exists" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["b.sog"], "a.sog was not written either"
    (tmp_path / "other").mkdir()
    write_ply(synthetic_scene(100), tmp_path / "other" / "a.ply")
    assert main(["compress", str(inputs / "a.ply"), str(tmp_path / "other" / "a.ply"), str(tmp_path / "new"),
                 "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would both write" in err[0] and not (tmp_path / "new").exists()


@pytest.mark.slow
def test_a_batch_on_two_workers_writes_the_serial_bytes(inputs, tmp_path):
    pytest.importorskip("distributed")
    assert main(["compress", str(inputs), str(tmp_path / "serial"), "--sort", "morton", "-q"]) == 0
    assert main(["compress", str(inputs), str(tmp_path / "dask"), "--sort", "morton", "-q", "--workers", "2"]) == 0
    for name in ("a.sog", "b.sog"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "serial" / name).read_bytes()
