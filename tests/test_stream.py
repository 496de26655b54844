"""Out-of-core streamed SOG (`sog.stream`): a binary PLY split into chunks on its positions, each chunk loaded,
reduced, sorted, encoded and written on its own, the tree last. Level 0 round-trips every Gaussian exactly once;
the bytes do not depend on which order, or how many times, the chunks run; a failed run leaves nothing."""

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
from sog.io import write_ply
from sog.io.lod_format import META_NAME
from sog.pipeline import CompressOptions, compress
from sog.stream import compress_chunked, run_chunk, serial

N = 2000
#: 600-Gaussian chunks: a 2,000-Gaussian scene makes four leaves
OPTIONS = CompressOptions(sort="morton", format_options={"levels": 2, "chunk_gaussians": 600})


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ply(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "scene.ply"
    write_ply(synthetic_scene(N, seed=3), path)
    return path


@pytest.fixture(scope="module")
def written(ply):
    out = ply.parent / "serial"
    return out, compress_chunked(ply, out / META_NAME, OPTIONS, quiet=True)


def test_level_zero_round_trips_every_gaussian_exactly_once(written, ply):
    out, result = written
    meta = json.loads((out / META_NAME).read_text())
    assert len(meta["filenames"]) == 8, "four leaves of two levels"
    assert meta["counts"][0] == N and meta["counts"][1] == sum(math.ceil(n / 2) for n in _leaf_counts(meta))
    assert torch.equal(torch.sort(result.order).values, torch.arange(N)), "a bijection onto the PLY's rows"
    back, source = sog.load(out / META_NAME), sog.load(ply)
    assert len(back) == N
    # row i of level 0 is PLY row order[i]: the same Gaussian, up to the codec's quantisation of positions
    extent = float((source.means.max(0).values - source.means.min(0).values).max())
    assert float((back.means - source.means[result.order]).abs().max()) < 1e-3 * extent
    assert len(sog.load(out / META_NAME, lod=1)) == meta["counts"][1]


def _leaf_counts(meta) -> list[int]:
    out, stack = [], [meta["tree"]]
    while stack:
        node = stack.pop()
        stack.extend(node.get("children", []))
        if "lods" in node:
            out.append(node["lods"]["0"]["count"])
    return out


def test_every_chunk_holds_at_most_the_chunk_size_and_lies_in_its_leaf_box(written):
    out, _ = written
    meta = json.loads((out / META_NAME).read_text())
    stack = [meta["tree"]]
    while stack:
        node = stack.pop()
        stack.extend(node.get("children", []))
        for level, lod in node.get("lods", {}).items():
            assert lod["count"] <= 600 and lod["offset"] == 0
            means = sog.load(out / meta["filenames"][lod["file"]]).means
            assert len(means) == lod["count"]
            lo, hi = torch.tensor(node["bound"]["min"]), torch.tensor(node["bound"]["max"])
            assert bool(((means >= lo - 1e-3) & (means <= hi + 1e-3)).all()), f"level {level} outside its leaf"


def test_a_scene_of_one_chunk_gets_the_in_memory_writers_bytes(ply, tmp_path):
    options = CompressOptions(sort="morton", format_options={"levels": 2})
    chunked = compress_chunked(ply, tmp_path / "chunked" / META_NAME, options, quiet=True)
    whole = compress(ply, tmp_path / "whole" / META_NAME, options, quiet=True)
    assert files_of(tmp_path / "chunked") == files_of(tmp_path / "whole")
    assert chunked.bytes == whole.bytes and torch.equal(chunked.order, whole.order)


def backwards(function, tasks, progress):
    """A runner that runs the chunks last first, as a cluster may finish them."""
    done = {task.leaf: function(task) for task in reversed(tasks)}
    return [done[task.leaf] for task in tasks]


def twice(function, tasks, progress):
    """A runner that runs a chunk again over what it wrote, as a retried task does."""
    function(tasks[1])
    return serial(function, tasks, progress)


@pytest.mark.parametrize("runner", [backwards, twice])
def test_the_bytes_do_not_depend_on_the_order_or_repeats_of_the_chunks(written, ply, tmp_path, runner):
    out, result = written
    again = compress_chunked(ply, tmp_path / "out" / META_NAME, OPTIONS, quiet=True, run=runner)
    assert files_of(tmp_path / "out") == files_of(out)
    assert torch.equal(again.order, result.order)


def test_a_failing_chunk_leaves_no_tree_and_no_chunks(ply, tmp_path):
    def fail_second(function, tasks, progress):
        function(tasks[0])
        raise SogError("disk full")

    with pytest.raises(SogError, match="disk full"):
        compress_chunked(ply, tmp_path / "new" / META_NAME, OPTIONS, quiet=True, run=fail_second)
    assert not (tmp_path / "new").exists(), "the folder this run made is gone"
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("mine")
    with pytest.raises(SogError, match="disk full"):
        compress_chunked(ply, tmp_path / "kept" / META_NAME, OPTIONS, quiet=True, run=fail_second)
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["notes.txt"], "only the user's file is left"


def test_a_chunk_with_a_nan_is_one_line_exit_2_and_leaves_nothing(tmp_path, capsys):
    from sog.io.ply_memmap import ply_layout

    write_ply(synthetic_scene(N, seed=3), tmp_path / "s.ply")
    layout = ply_layout(tmp_path / "s.ply")
    rows = np.memmap(tmp_path / "s.ply", dtype=layout.dtype, mode="r+", offset=layout.offset, shape=(N,))
    rows["scale_1"][1234] = np.nan
    rows.flush()
    del rows
    code = main(["compress", str(tmp_path / "s.ply"), str(tmp_path / "out" / META_NAME), "--chunk-size", "600",
                 "--sort", "morton", "--lod", "1", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "NaN or Inf" in err[0], err
    assert not (tmp_path / "out").exists()


def test_the_command_line_takes_a_chunk_size(ply, tmp_path, capsys):
    out = tmp_path / "cli" / META_NAME
    assert main(["compress", str(ply), str(out), "--chunk-size", "1000", "--lod", "1", "--sort", "morton",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "lod" and summary["count"] == N
    meta = json.loads(out.read_text())
    assert meta["counts"] == [N] and len(meta["filenames"]) == 2 and max(_leaf_counts(meta)) <= 1000


@pytest.mark.parametrize("args, match", [
    (["--chunk-size", "0"], "chunk_gaussians must be"),
    (["--workers", "0"], "--workers must be"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "give one"),
    (["--finetune", "2"], "--finetune applies to SOG outputs"),
])
def test_bad_chunk_options_are_one_line_exit_2(ply, tmp_path, capsys, args, match):
    code = main(["compress", str(ply), str(tmp_path / "out" / META_NAME), "-q", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and match in err[0], err
    assert not (tmp_path / "out").exists()


def test_chunk_options_with_another_output_or_input_are_one_line_exit_2(ply, tmp_path, capsys):
    assert main(["compress", str(ply), str(tmp_path / "s.sog"), "--chunk-size", "600", "-q"]) == 2
    assert main(["compress", str(ply), str(tmp_path / "s.sog"), "--workers", "2", "-q"]) == 2
    write_ply(sog.load(ply), tmp_path / "text.ply", ascii=True)  # read whole: no memory map of text
    assert main(["compress", str(tmp_path / "text.ply"), str(tmp_path / "o" / META_NAME), "--workers", "2", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "lod-meta.json" in err[0] and "binary little-endian PLY" in err[2], err
    assert not (tmp_path / "s.sog").exists() and not (tmp_path / "o").exists()


def test_a_chunk_task_is_its_own_unit_of_work(written, ply, tmp_path):
    """`run_chunk` needs only its task (what a worker process receives): rerun alone, it writes its folders' bytes."""
    out, _ = written
    from sog.stream import ChunkTask

    meta = json.loads((out / META_NAME).read_text())
    first = meta["tree"]
    while "children" in first:
        first = first["children"][0]
    count = first["lods"]["0"]["count"]
    index = np.sort(written[1].order[:count].numpy())
    task = ChunkTask(0, str(ply), index, str(tmp_path), ("0_0/meta.json", "1_0/meta.json"),
                     CompressOptions(sort="morton"))
    done = run_chunk(task)
    assert done.counts == [count, math.ceil(count / 2)]
    assert files_of(tmp_path) == {k: v for k, v in files_of(out).items() if k.startswith(("0_0/", "1_0/"))}


def test_splat_transform_reads_each_level_with_its_count(written, splat_transform, tmp_path):
    out, _ = written
    counts = json.loads((out / META_NAME).read_text())["counts"]
    for level, count in enumerate(counts):
        splat_transform(out / META_NAME, "-L", str(level), tmp_path / f"level{level}.ply")
        assert len(sog.load(tmp_path / f"level{level}.ply")) == count


def test_info_describes_a_streamed_scene_larger_than_sog_reads_whole(written, capsys):
    """A streamed scene may hold more Gaussians than sog reads into memory (`Limits.max_gaussians`, 2^25): `sog info`
    describes it from the tree and each chunk's meta (the 50M benchmark scene once failed there, exit 2), while a
    whole read still refuses it."""
    from dataclasses import replace

    from sog.io.info import scene_info
    from sog.io.limits import LIMITS

    out, _ = written
    meta = out / META_NAME
    small = replace(LIMITS, max_gaussians=N - 1)       # each chunk fits; the whole level does not
    with pytest.raises(SogError, match="more than sog's limit"):
        sog.load(meta, small)
    info = scene_info(meta, small)
    assert (info.format, info.count, info.sh_degree) == ("lod", N, sog.load(meta).sh_degree)
    level0 = [name for name in json.loads(meta.read_text())["filenames"] if name.startswith("0_")]
    assert len(level0) == 4                            # the bytes: level 0's chunk folders, every file in them
    assert info.bytes == sum(p.stat().st_size for name in level0 for p in (out / name).parent.iterdir())
    assert main(["info", str(meta), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == N
