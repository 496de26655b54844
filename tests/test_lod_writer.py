"""Streamed SOG output: `sog compress IN OUT/lod-meta.json [--lod LEVELS]` writes PlayCanvas's lod-meta.json
(version 1) over spatial chunks, each an unbundled SOG folder; level k is the scene halved k times by `sog.reduce`.
sog reads every level back, splat-transform reads it, and the tree is written only once every chunk is in."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

import sog
from sog.cli import main
from sog.datasets import synthetic_scene
from sog.errors import SogError
from sog.io import output_format, write_ply
from sog.io.atomic import is_sog_folder
from sog.io.lod_format import META_NAME, VERSION
from sog.io.lod_writer import write_lod
from sog.pipeline import CompressOptions, compress

N = 2000
#: small chunks, so that a 2,000-Gaussian scene makes a tree of several leaves
LOD_OPTIONS = {"levels": 2, "chunk_gaussians": 600}


def write(out: Path, scene) -> sog.CompressResult:
    return compress(scene, out / META_NAME, CompressOptions(sort="morton", format_options=LOD_OPTIONS), quiet=True)


@pytest.fixture(scope="module")
def scene():
    return synthetic_scene(N, seed=3)


@pytest.fixture(scope="module")
def written(tmp_path_factory, scene):
    out = tmp_path_factory.mktemp("lod") / "out"
    return out, write(out, scene)


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_output_name_picks_the_streamed_sog_writer():
    assert output_format("out/lod-meta.json") == "lod"


def test_the_tree_is_version_1_with_a_count_per_level(written):
    out, result = written
    meta = json.loads((out / META_NAME).read_text())
    assert meta["version"] == VERSION == 1
    assert meta["lodLevels"] == 2
    assert meta["counts"] == [N, math.ceil(N / 2)] and meta["count"] == sum(meta["counts"])
    assert result.format == "lod" and result.count == N
    assert len(meta["filenames"]) >= 4, "600-Gaussian chunks: level 0 alone needs four"


def test_level_zero_reads_back_every_gaussian_exactly_once(written, scene):
    out, result = written
    back = sog.load(out / META_NAME, lod=0)
    assert len(back) == N
    assert torch.equal(torch.sort(result.order).values, torch.arange(N)), "each input Gaussian is read once"
    # in the order the result names: each position is the input's, to within the codec's quantisation
    extent = float((scene.means.max(0).values - scene.means.min(0).values).max())
    assert torch.allclose(back.means, scene.means[result.order], atol=1e-3 * extent)


def test_level_one_holds_about_half(written):
    out, _ = written
    assert len(sog.load(out / META_NAME, lod=1)) == math.ceil(N / 2)


def test_a_level_past_the_last_or_of_another_format_is_an_error(written, tmp_path, scene):
    out, _ = written
    with pytest.raises(SogError, match="level of detail 2"):
        sog.load(out / META_NAME, lod=2)
    write_ply(scene, tmp_path / "s.ply")
    with pytest.raises(SogError, match="only level 0"):
        sog.load(tmp_path / "s.ply", lod=1)


def test_each_chunk_is_a_sog_v2_folder_holding_its_range(written):
    out, _ = written
    meta = json.loads((out / META_NAME).read_text())
    sizes = {}
    stack = [meta["tree"]]
    while stack:
        node = stack.pop()
        assert len(node["bound"]["min"]) == len(node["bound"]["max"]) == 3
        stack.extend(node.get("children", []))
        for ref in node.get("lods", {}).values():
            sizes[ref["file"]] = ref["offset"] + ref["count"]
    assert sorted(sizes) == list(range(len(meta["filenames"]))), "every file is a chunk of the tree"
    for file, name in enumerate(meta["filenames"]):
        chunk = out / name
        assert is_sog_folder(chunk.parent)
        assert json.loads(chunk.read_text())["version"] == 2
        assert len(sog.load(chunk)) == sizes[file]


def test_the_same_scene_writes_the_same_bytes(written, tmp_path, scene):
    out, _ = written
    write(tmp_path / "again", scene)
    assert files_of(tmp_path / "again") == files_of(out)


def test_a_failing_chunk_leaves_no_tree(tmp_path, scene):
    calls = []

    def encode(part, path):
        if calls:
            raise SogError("disk full")
        calls.append(path)
        return compress(part, path, CompressOptions(sort="morton"), quiet=True)

    with pytest.raises(SogError, match="disk full"):
        write_lod([scene], tmp_path / "out" / META_NAME, encode, chunk_gaussians=600)
    assert not (tmp_path / "out" / META_NAME).exists()


@pytest.mark.parametrize("value, match", [("x", "--lod must be"), ("0", "--lod must be"), ("2.5", "--lod must be"),
                                          ("99", "--lod must be")])
def test_a_bad_lod_value_is_one_line_exit_2(tmp_path, scene, capsys, value, match):
    write_ply(scene, tmp_path / "s.ply")
    code = main(["compress", str(tmp_path / "s.ply"), str(tmp_path / "out" / META_NAME), "--lod", value, "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("sog: error:") and match in err[0]
    assert not (tmp_path / "out").exists()


def test_lod_with_another_output_is_one_line_exit_2(tmp_path, scene, capsys):
    write_ply(scene, tmp_path / "s.ply")
    assert main(["compress", str(tmp_path / "s.ply"), str(tmp_path / "s.sog"), "--lod", "2", "-q"]) == 2
    assert "lod-meta.json" in capsys.readouterr().err
    assert not (tmp_path / "s.sog").exists()


def test_splat_transform_reads_each_level(written, splat_transform, tmp_path):
    out, _ = written
    for level, count in ((0, N), (1, math.ceil(N / 2))):
        splat_transform(out / META_NAME, "-L", str(level), tmp_path / f"level{level}.ply")
        assert len(sog.load(tmp_path / f"level{level}.ply")) == count


def test_the_command_line_writes_the_levels_it_is_asked_for(tmp_path, scene, capsys):
    write_ply(scene, tmp_path / "s.ply")
    out = tmp_path / "new" / META_NAME
    assert main(["compress", str(tmp_path / "s.ply"), str(out), "--lod", "1", "--sort", "morton", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "lod" and summary["count"] == N
    assert json.loads(out.read_text())["counts"] == [N]
    assert len(sog.load(out)) == N


def test_a_forced_rewrite_with_fewer_chunks_leaves_no_stale_chunk_folders(tmp_path, scene):
    out = tmp_path / "out"
    write(out, scene)
    (out / "notes.txt").write_text("the user's own file")
    smaller = {**LOD_OPTIONS, "levels": 1}
    compress(scene, out / META_NAME, CompressOptions(sort="morton", format_options=smaller), overwrite=True,
             quiet=True)
    meta = json.loads((out / META_NAME).read_text())
    listed = {Path(name).parent.name for name in meta["filenames"]}
    folders = {p.name for p in out.iterdir() if p.is_dir()}
    assert folders == listed, f"folders the new tree does not name: {sorted(folders - listed)}"
    assert (out / "notes.txt").read_text() == "the user's own file"  # only chunk folders of the old tree go
    assert len(sog.load(out / META_NAME)) == N
