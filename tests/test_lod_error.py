"""Per-leaf errors of streamed SOG: every leaf of a written ``lod-meta.json`` says, per level, what that level loses
in its region against the finest level (`sog.reduce.lod_error`), and the header says ``lodErrors``. The figure is
0 at level 0, grows as a level paints less of what the finest one paints, and never falls with the level; the
reader refuses a hostile ``errors`` list in one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import sog
from sog.cli import main
from sog.datasets import synthetic_scene
from sog.errors import SogError
from sog.io.lod_format import META_NAME
from sog.io.lod_writer import bounds
from sog.pipeline import CompressOptions, compress
from sog.reduce.lod_error import box_cameras, level_errors

N = 2000


@pytest.fixture(scope="module")
def scene():
    return synthetic_scene(N, seed=3)


def leaves(node: dict) -> list[dict]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if "lods" in n:
            out.append(n)
        stack.extend(n.get("children", []))
    return out


@pytest.fixture(scope="module")
def meta(tmp_path_factory, scene):
    out = tmp_path_factory.mktemp("lod") / "out"
    compress(scene, out / META_NAME, CompressOptions(sort="morton", format_options={"levels": 3,
                                                                                   "chunk_gaussians": 600}),
             quiet=True)
    return json.loads((out / META_NAME).read_text()), out


def test_the_header_flags_errors_and_every_leaf_has_one_per_level(meta):
    doc, _ = meta
    assert doc["lodErrors"] is True
    found = leaves(doc["tree"])
    assert len(found) >= 4
    for leaf in found:
        errors = leaf["errors"]
        assert len(errors) == doc["lodLevels"] == 3
        assert errors[0] == 0
        assert all(np.isfinite(errors)) and min(errors) >= 0
        assert errors == sorted(errors), "a coarser level never loses less than a finer one"
        assert errors[2] > 0, "a quarter of the Gaussians paints visibly less"


def test_the_measure_is_zero_for_the_same_gaussians_and_one_for_none(scene):
    lo, hi = bounds(scene)
    empty = scene.permute(torch.arange(0))
    assert level_errors([scene, scene, empty], lo, hi) == [0.0, 0.0, 1.0]


def test_fewer_gaussians_lose_more(scene):
    lo, hi = bounds(scene)
    order = torch.randperm(N, generator=torch.Generator().manual_seed(0))
    half, tenth = scene.permute(order[: N // 2]), scene.permute(order[: N // 10])
    errors = level_errors([scene, half, tenth], lo, hi)
    assert 0 < errors[1] < errors[2] < 1


def test_six_cameras_look_at_the_box_along_each_axis():
    cams = box_cameras(np.array([-1.0, -2.0, 0.0]), np.array([1.0, 2.0, 4.0]), size=32)
    assert [c.name for c in cams] == ["-x", "+x", "-y", "+y", "-z", "+z"]
    centre = torch.tensor([0.0, 0.0, 2.0, 1.0])
    for cam in cams:
        x, y, z = (cam.viewmat.double() @ centre.double())[:3]
        assert z > 0 and abs(float(x)) < 1e-5 and abs(float(y)) < 1e-5, "the box's centre is straight ahead"
        assert (cam.width, cam.height) == (32, 32)


def test_errors_are_the_same_bytes_run_to_run(tmp_path, scene):
    texts = []
    for name in ("a", "b"):
        compress(scene, tmp_path / name / META_NAME, CompressOptions(format_options={"levels": 2,
                                                                                      "chunk_gaussians": 600}),
                 quiet=True)
        texts.append((tmp_path / name / META_NAME).read_text())
    assert texts[0] == texts[1]


@pytest.mark.parametrize("errors, match", [
    ("[0, -1]", "finite number >= 0"),
    ('[0, "a"]', "finite number >= 0"),
    ("[0, true]", "finite number >= 0"),
    ("7", "a list of at most"),
    ("[" + ",".join(["0"] * 65) + "]", "a list of at most"),
    ("[0, 1e999]", "not a finite number"),
])
def test_a_hostile_errors_list_is_one_line_exit_2(meta, tmp_path, capsys, errors, match):
    doc, out = meta
    text = json.dumps(doc)
    first = json.dumps(leaves(doc["tree"])[-1]["errors"])
    hostile = text.replace(f'"errors": {first}', f'"errors": {errors}', 1)
    assert hostile != text
    folder = tmp_path / "hostile"
    folder.mkdir()
    for name in doc["filenames"]:
        (folder / Path(name).parent).symlink_to(out / Path(name).parent)
    (folder / META_NAME).write_text(hostile)
    with pytest.raises(SogError, match=match):
        sog.load(folder / META_NAME)
    assert main(["info", str(folder / META_NAME)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
