"""The count search of a rate target (`sog.pipeline`, ``--quality small`` and ``--psnr``): it tries fewer
Gaussians (merged as ``--reduce`` merges) as well as coarser bits, writes the smallest file that reaches the target
against the *whole* scene's renders, says what it kept and tried, measures only on tuning views, and
``--keep-all`` turns it off."""

from __future__ import annotations

import json

import pytest

import sog
from conftest import small_scene
from sog.cli import main
from sog.evaluate import evaluate
from sog.io import write_ply
from sog.metrics import RateTarget
from sog.pipeline import COUNT_LADDER, CompressOptions, compress
from sog.render import views
from sog.render.views import search_cameras

VIEWS, SIZE = 8, 48


def options(**kw) -> CompressOptions:
    return CompressOptions(sort="morton", search_views=VIEWS, search_size=SIZE, **kw)


@pytest.fixture(scope="module")
def scene():
    return small_scene(400, seed=8, sh_degree=1)


@pytest.fixture(scope="module")
def searched(tmp_path_factory, scene):
    """A low target that a reduced scene can reach: the search goes down the ladder."""
    out = tmp_path_factory.mktemp("count") / "s.sog"
    return compress(scene, out, options(psnr_p10=24.0, psnr_worst=22.0), quiet=True), out


def test_a_reachable_target_keeps_fewer_gaussians_and_says_where_it_stopped(searched, scene):
    result, out = searched
    counts = result.rate["counts"]
    assert result.source_count == len(scene) > result.count == len(sog.load(out))
    assert [row["removed"] for row in counts] == list(COUNT_LADDER[:len(counts)])
    written = [row for row in counts if row.get("bytes") == result.bytes or row["kept"] == result.count]
    assert written and written[0]["reached"]
    target = RateTarget(p10=24.0, worst=22.0)
    for row in counts[:-1]:
        assert target.met(sog.metrics.ViewStats(**row["unquantised"]))
    # every share with a file tried reached the target or is the one it stopped at; the kept file is the smaller
    tried = [row for row in counts if "bytes" in row]
    assert 1 <= len(tried) <= 3
    assert result.bytes == min(row["bytes"] for row in tried if row["reached"])


def test_the_written_file_reaches_the_target_against_the_whole_scene(searched, scene):
    result, out = searched
    stats = evaluate(scene, out, cameras=search_cameras(scene, views=VIEWS, size=SIZE))
    assert stats["psnr_p10"] >= 24.0 - 1e-6 and stats["psnr_min"] >= 22.0 - 1e-6


def test_keep_all_searches_the_bits_only(tmp_path, scene):
    result = compress(scene, tmp_path / "k.sog", options(psnr_p10=24.0, psnr_worst=22.0, search_count=False),
                      quiet=True)
    assert result.count == len(scene) and "counts" not in result.rate


def test_a_target_no_reduced_scene_reaches_keeps_every_gaussian(tmp_path, scene):
    result = compress(scene, tmp_path / "h.sog", options(target_psnr=60.0), quiet=True)
    assert result.count == len(scene)
    whole, first = result.rate["counts"]            # the whole scene's search, and the first share, which failed
    assert whole["removed"] == 0.0 and whole["kept"] == len(scene) and whole["bytes"] == result.bytes
    assert first["removed"] == COUNT_LADDER[0] and "bytes" not in first


def test_the_count_search_never_reads_a_judging_camera(tmp_path, scene, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the count search asked for judging cameras")

    monkeypatch.setattr(views, "judging_cameras", refuse)
    compress(scene, tmp_path / "j.sog", options(psnr_p10=24.0, psnr_worst=22.0), quiet=True)


def test_the_cli_reports_kept_of_source_and_keep_all(tmp_path, capsys):
    write_ply(small_scene(300, seed=9, sh_degree=0), tmp_path / "s.ply")
    base = ["compress", str(tmp_path / "s.ply"), "--sort", "morton", "--psnr-p10", "24", "--psnr-worst", "22",
            "--json", "-q"]
    assert main([*base[:2], str(tmp_path / "a.sog"), *base[2:]]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source_count"] == 300 and out["count"] < 300
    assert main([*base[:2], str(tmp_path / "b.sog"), *base[2:], "--keep-all"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["source_count"] == out["count"] == 300


@pytest.mark.parametrize("name", ["s.compressed.ply", "s.spz", "s.glb"])
def test_every_format_searches_the_count_and_reaches_the_target_against_the_whole_scene(tmp_path, scene, name):
    """A format with no settings of its own (compressed PLY, GLB) chooses only the count; SPZ its count and its
    writer's lattices. Either way the file written is the one measured, judged against the whole scene."""
    out = tmp_path / name
    result = compress(scene, out, options(psnr_p10=24.0, psnr_worst=22.0), quiet=True)
    assert result.source_count == len(scene) > result.count == len(sog.load(out))
    assert result.bytes == out.stat().st_size
    assert result.rate["reached"]
    tried = [row for row in result.rate["counts"] if "bytes" in row]
    assert result.bytes == min(row["bytes"] for row in tried if row["reached"])
    stats = evaluate(scene, out, cameras=search_cameras(scene, views=VIEWS, size=SIZE))
    assert stats["psnr_p10"] >= 24.0 - 1e-6 and stats["psnr_min"] >= 22.0 - 1e-6
    assert abs(stats["psnr"] - result.psnr) < 1e-3


def test_a_fixed_format_at_an_unreachable_target_keeps_every_gaussian_and_says_so(tmp_path, scene, capsys):
    write_ply(scene, tmp_path / "s.ply")
    assert main(["compress", str(tmp_path / "s.ply"), str(tmp_path / "s.compressed.ply"), "--sort", "morton",
                 "--psnr", "90", "-q", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == out["source_count"] == len(scene) and not out["rate"]["reached"]
