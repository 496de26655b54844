"""The command line: the main job end to end, and one clear line + exit code 2 for every bad input,
with no output file left behind."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from conftest import small_scene
from sog.cli import main
from sog.io import write_ply
from sog.metrics import SMALL_TARGET


def run(*args):
    return main([str(a) for a in args])


def test_compress_info_decompress(tmp_path, sample_ply, capsys):
    assert run("compress", sample_ply, tmp_path / "s.sog", "--sort", "morton", "--quiet") == 0
    assert capsys.readouterr().out == ""
    assert run("info", tmp_path / "s.sog", "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["count"] == 10000 and info["sh_degree"] == 3 and info["format"] == "sog"
    assert info["bytes"] == (tmp_path / "s.sog").stat().st_size
    assert info["grid"] == [100, 100] and info["ratio"] > 3
    assert run("decompress", tmp_path / "s.sog", tmp_path / "back.ply", "-q") == 0
    assert run("info", tmp_path / "back.ply", "--json") == 0
    assert json.loads(capsys.readouterr().out)["count"] == 10000


def test_compress_json_summary(tmp_path, sample_ply, capsys):
    assert run("compress", sample_ply, tmp_path / "s.sog", "--sort", "none", "--json", "-q") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == 10000 and out["bytes"] == (tmp_path / "s.sog").stat().st_size
    assert out["bits_per_gaussian"] == pytest.approx(8 * out["bytes"] / 10000)


def test_compress_to_a_psnr_reports_the_measured_psnr_and_a_playcanvas_request_is_refused(tmp_path, sample_ply,
                                                                                          capsys):
    out, ply = tmp_path / "s.sog", tmp_path / "scene.ply"
    write_ply(small_scene(800, seed=3, sh_degree=1), ply)  # the search renders 48 tuning views a probe
    assert run("compress", ply, out, "--sort", "morton", "--psnr", "58", "--json", "-q") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["psnr"] >= 58 and summary["rate"]["reached"] and summary["bytes"] == out.stat().st_size
    assert summary["rate"]["target"] == {"mean": 58.0, "p10": 54.0, "worst": 48.0}
    assert summary["rate"]["stats"]["p10"] >= 54 and summary["rate"]["stats"]["worst"] >= 48
    _fails(capsys, "compress", sample_ply, tmp_path / "p.sog", "--profile", "playcanvas", "--psnr", "58",
           match="--psnr does not apply to the playcanvas")
    assert not (tmp_path / "p.sog").exists()


def test_the_small_preset_reports_its_p10_and_worst_view_target(tmp_path, capsys):
    ply = tmp_path / "scene.ply"
    write_ply(small_scene(800, seed=3, sh_degree=1), ply)
    assert run("compress", ply, tmp_path / "s.sog", "--sort", "morton", "--quality", "small") == 0
    out = capsys.readouterr().out
    assert f"(target p10 {SMALL_TARGET.p10:g}, worst {SMALL_TARGET.worst:g} dB: --quality small's p10 40 dB, worst " \
        "35 dB for unseen views, plus a guard)" in out and "on the tuning views" in out and (tmp_path / "s.sog").exists()
    assert run("compress", ply, tmp_path / "h.sog", "--sort", "morton", "--psnr-p10", f"{SMALL_TARGET.p10:g}",
               "--psnr-worst", f"{SMALL_TARGET.worst:g}") == 0  # the same floors typed by hand are not the preset
    out = capsys.readouterr().out
    assert f"(target p10 {SMALL_TARGET.p10:g}, worst {SMALL_TARGET.worst:g} dB)" in out and "guard" not in out
    for flag in ("--psnr-p10", "--psnr-worst"):
        _fails(capsys, "compress", ply, tmp_path / "bad.sog", flag, "nan", match=f"{flag} must be a positive")
    assert not (tmp_path / "bad.sog").exists()


def _fails(capsys, *args, match: str):
    code = run(*args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("sog: error: "), err
    assert match in err, err
    assert "Traceback" not in err


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("case", ["truncated", "missing", "nan", "empty", "not_ply", "corrupt_sog", "no_file"])
def test_bad_input_gives_one_line_exit_2_and_no_output(tmp_path, sample_ply, capsys, case):
    src = tmp_path / "in.ply"
    data = sample_ply.read_bytes()
    if case == "truncated":
        src.write_bytes(data[: len(data) - 1000])
        match = "not a readable PLY"
    elif case == "missing":
        src.write_bytes(data.replace(b"property float opacity\n", b"property float opacitx\n"))
        match = "missing Gaussian property opacity"
    elif case == "nan":
        scene = small_scene(20)
        scene.scales[5, 0] = float("nan")
        write_ply_unchecked(scene, src)
        match = "NaN or Inf"
    elif case == "empty":
        write_ply_unchecked(small_scene(20).permute(__import__("torch").arange(0)), src)
        match = "zero Gaussians"
    elif case == "not_ply":
        src = tmp_path / "in.jpg"
        src.write_bytes(b"\xff\xd8\xff\xe0 not a scene")
        match = "not a Gaussian-splat file"
    elif case == "corrupt_sog":
        src = tmp_path / "in.sog"
        run("compress", sample_ply, src, "--sort", "none", "-q")
        raw = bytearray(src.read_bytes())
        raw[len(raw) // 2: len(raw) // 2 + 64] = b"\0" * 64
        src.write_bytes(bytes(raw))
        match = "corrupt"
    else:
        src = tmp_path / "nothing.ply"
        match = "no such file"
    before = _leftovers(tmp_path)
    _fails(capsys, "compress", src, tmp_path / "out.sog", "-q", match=match)
    assert _leftovers(tmp_path) == before


def write_ply_unchecked(scene, path):
    """Write a PLY even when the scene is invalid (our writer refuses to)."""
    import numpy as np
    from plyfile import PlyData, PlyElement
    n = len(scene)
    cols = {"x": scene.means[:, 0], "y": scene.means[:, 1], "z": scene.means[:, 2],
            **{f"f_dc_{i}": scene.sh0[:, 0, i] for i in range(3)}, "opacity": scene.opacities,
            **{f"scale_{i}": scene.scales[:, i] for i in range(3)},
            **{f"rot_{i}": scene.quats[:, i] for i in range(4)}}
    rec = np.empty(n, dtype=[(k, "<f4") for k in cols])
    for k, v in cols.items():
        rec[k] = v.numpy()
    PlyData([PlyElement.describe(rec, "vertex")]).write(str(path))


def test_existing_output_is_refused_unless_forced(tmp_path, sample_ply, capsys):
    out = tmp_path / "s.sog"
    out.write_bytes(b"precious")
    _fails(capsys, "compress", sample_ply, out, "--sort", "none", "-q", match="already exists")
    assert out.read_bytes() == b"precious"
    assert run("compress", sample_ply, out, "--sort", "none", "-q", "--force") == 0
    assert zipfile.is_zipfile(out)


def test_sog_zip_without_meta_is_an_error(tmp_path, capsys):
    bad = tmp_path / "bad.sog"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("means_l.webp", b"x")
    _fails(capsys, "decompress", bad, tmp_path / "o.ply", match="no meta.json")
    assert not (tmp_path / "o.ply").exists()


def test_cuda_without_gpu_is_a_clear_error(tmp_path, sample_ply, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    _fails(capsys, "compress", sample_ply, tmp_path / "s.sog", "--device", "cuda", "-q", match="no CUDA GPU")


def test_console_script_runs_as_a_module(tmp_path, sample_ply):
    proc = subprocess.run([sys.executable, "-m", "sog.cli", "info", str(sample_ply)], capture_output=True, text=True)
    assert proc.returncode == 0 and "10,000 Gaussians" in proc.stdout


def test_force_never_replaces_a_folder_that_is_not_a_sog_output(tmp_path, sample_ply, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"precious")
    _fails(capsys, "compress", sample_ply, folder, "--sort", "none", "-q", "--force", match="not a SOG folder")
    assert (folder / "holiday.jpg").read_bytes() == b"precious"
    out = tmp_path / "scene"
    assert run("compress", sample_ply, out, "--sort", "none", "-q") == 0
    assert run("compress", sample_ply, out, "--sort", "morton", "-q", "--force") == 0
    assert sorted(p.name for p in out.iterdir())[0] == "means_l.webp"


def test_default_compress_sorts_with_shufflesoftsort_under_a_work_budget(tmp_path, sample_ply, capsys):
    assert run("compress", sample_ply, tmp_path / "s.sog", "--sort-budget", "3", "--json", "-q") == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == 10000
    assert run("decompress", tmp_path / "s.sog", tmp_path / "back.ply", "-q") == 0
    assert run("compress", sample_ply, tmp_path / "c.sog", "--sort-budget", "3", "--sort-seconds", "60", "-q") == 0
    for bad in ("-5", "nan", "0"):
        _fails(capsys, "compress", sample_ply, tmp_path / "t.sog", "--sort-seconds", bad, "-q",
               match="--sort-seconds must be a positive")
    _fails(capsys, "compress", sample_ply, tmp_path / "t.sog", "--sort-budget", "-1", "-q",
           match="--sort-budget must be 0 or more")
    assert not (tmp_path / "t.sog").exists()


def test_sort_weights_choose_the_features_and_bad_ones_are_one_line_errors(tmp_path, sample_ply, capsys):
    assert run("compress", sample_ply, tmp_path / "a.sog", "--sort", "morton", "--sort-weights",
               "means=1,sh0=0,scales=0,opacities=0", "-q") == 0
    _fails(capsys, "compress", sample_ply, tmp_path / "b.sog", "--sort-weights", "colour=1", "-q",
           match="unknown attribute 'colour'")
    _fails(capsys, "compress", sample_ply, tmp_path / "b.sog", "--sort-weights", "means=x", "-q",
           match="is not NAME=NUMBER")
    assert not (tmp_path / "b.sog").exists()


@pytest.mark.slow  # importance from 12 tuning views of 33,000 Gaussians: about two minutes on 2 cores
def test_layers_flag_splits_a_large_scene(tmp_path, capsys):
    ply = tmp_path / "big.ply"
    write_ply(small_scene(33_000, seed=3, sh_degree=0), ply)  # two layers of at least 16,384
    out = tmp_path / "big.sog"
    assert run("compress", ply, out, "--sort", "morton", "--layers", "2", "--json", "-q") == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["layers"]) == 2 and summary["count"] == 33_000
    assert run("info", out, "--json") == 0
    info = json.loads(capsys.readouterr().out)
    assert info["count"] == 33_000 and len(info["grids"]) == 1  # sogv2 layers are row blocks of one grid
    assert run("compress", ply, tmp_path / "one.sog", "--sort", "morton", "--layers", "1", "--json", "-q") == 0
    assert len(json.loads(capsys.readouterr().out)["layers"]) == 1


def test_the_retired_native_profile_is_refused_as_a_write_option_and_still_read(tmp_path, sample_ply, capsys):
    """`sog compress --profile native` (or its alias ``sog``) is one line and exit 2, with nothing written; a
    native file made through the library (the reader's own fixture) still reads and decompresses."""
    import sog
    for name in ("native", "sog"):
        _fails(capsys, "compress", sample_ply, tmp_path / f"{name}.sog", "--profile", name,
               match="is retired as a write option")
        assert not (tmp_path / f"{name}.sog").exists()
    made = tmp_path / "made.sog"
    sog.compress(sample_ply, made, sog.CompressOptions(profile="native", sort="morton"), quiet=True)
    assert run("info", made, "--json") == 0
    assert json.loads(capsys.readouterr().out)["count"] == len(sog.load(sample_ply))
    assert run("decompress", made, tmp_path / "back.ply", "-q") == 0 and (tmp_path / "back.ply").exists()


def test_layers_flag_is_refused_where_it_cannot_apply(tmp_path, sample_ply, capsys):
    _fails(capsys, "compress", sample_ply, tmp_path / "p.sog", "--profile", "playcanvas", "--layers", "2",
           match="--layers applies to profiles with importance layers")
    _fails(capsys, "compress", sample_ply, tmp_path / "z.sog", "--layers", "0", match="--layers must be 1 or more")
    assert not (tmp_path / "p.sog").exists() and not (tmp_path / "z.sog").exists()


def test_info_names_each_importance_layer_grid_from_the_file_itself(tmp_path, capsys):
    """`sog info` asks the container's profile for its grids: a layered native file reports one grid per layer."""
    from sog.io.info import scene_info

    scene = small_scene(3000, seed=1)
    out = tmp_path / "layered.sog"
    sog_options = dict(profile="native", sort="morton", profile_options={"layers": 3, "layer_min": 1000})
    import sog
    result = sog.compress(scene, out, sog.CompressOptions(**sog_options), quiet=True)
    info = scene_info(out)
    assert info.count == 3000 and info.format == "sog" and info.bytes == out.stat().st_size
    assert info.grids == result.layers and len(info.grids) == 3
    assert run("info", out, "--json") == 0
    assert json.loads(capsys.readouterr().out)["grids"] == [list(g) for g in result.layers]
