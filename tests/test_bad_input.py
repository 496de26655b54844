"""Every bad input gets one clear line: each class of hostile input (issue 20) ends in a `SogError` naming the
file and the field, within a time and memory bound, and never costs an input file or leaves a temporary one."""

from __future__ import annotations

import gzip
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile

import pytest
import torch

import sog
from conftest import ROOT
from fuzz_corpus import _big_image, make_seeds, run_case, sample_scene
from sog.cli import main
from sog.errors import SogError


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return make_seeds(tmp_path_factory.mktemp("bad_input_seeds"))


def _fails(capsys, *args, match: str) -> None:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("sog: error: "), err
    assert match in err, err


def _refused(path, match: str, seconds: float = 10.0, memory_mb: float = 256.0) -> None:
    """``path`` ends in a SogError matching ``match`` through the readers themselves (`sog.io.read_checked`, no
    last-resort conversion), in bounded time and RSS."""
    outcome = run_case(path, seconds, memory_mb)
    assert outcome.kind == "error", outcome
    assert match in outcome.message, outcome.message


def _tree(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ------------------------------------------------------------------------------------------ data loss

def test_force_never_deletes_a_folder_that_is_not_a_sog_folder(seeds, tmp_path, capsys):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    (photos / "a.jpg").write_bytes(b"jpeg")
    (photos / "sub" / "b.txt").write_text("notes")
    _fails(capsys, "decompress", seeds["sog_native"], photos, "--force", match="not a SOG folder")
    boxed = tmp_path / "x.sog"
    boxed.mkdir()
    (boxed / "meta.json").write_text("{}")
    (boxed / "thesis.tex").write_text("years of work")  # meta.json alone does not make it ours
    _fails(capsys, "compress", seeds["ply_binary"], boxed, "--force", "--sort", "none", match="not a SOG folder")
    assert _tree(photos) == ["a.jpg", "sub", "sub/b.txt"] and (photos / "sub" / "b.txt").read_text() == "notes"
    assert _tree(boxed) == ["meta.json", "thesis.tex"]


def test_force_replaces_a_sog_folder_it_wrote_and_leaves_no_temporary(seeds, tmp_path, capsys):
    out = tmp_path / "scene"
    for _ in range(2):
        assert main(["compress", str(seeds["ply_binary"]), str(out), "--sort", "none", "--force", "-q",
                     "--profile", "playcanvas", "--effort", "0"]) == 0
    assert (out / "meta.json").is_file() and [p.name for p in tmp_path.iterdir()] == ["scene"]


def test_the_output_may_not_be_the_input_nor_inside_an_input_sog_folder(seeds, tmp_path, capsys):
    ply = tmp_path / "a.ply"
    ply.write_bytes(seeds["ply_binary"].read_bytes())
    before = ply.read_bytes()
    _fails(capsys, "compress", ply, ply, "--force", "--sort", "none", match="is the input")
    os.symlink(ply, tmp_path / "link.ply")
    _fails(capsys, "decompress", tmp_path / "link.ply", ply, "--force", match="is the input")
    folder = tmp_path / "v2"
    folder.mkdir()
    for p in seeds["sog_v2_folder"].iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    _fails(capsys, "decompress", folder / "meta.json", folder, "--force", match="is the input")
    _fails(capsys, "decompress", folder, folder / "out.ply", match="inside the input SOG folder")
    assert ply.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == sorted(
        p.name for p in seeds["sog_v2_folder"].iterdir())


def test_an_unwritable_output_folder_is_one_line(seeds, tmp_path, capsys, monkeypatch):
    real_open = os.open

    def denied(path, *args, **kwargs):  # the temporary output's creation fails as in a read-only folder
        if os.fsdecode(path).endswith(".tmp"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)  # as root a chmod would not stop the write
    _fails(capsys, "decompress", seeds["sog_native"], tmp_path / "out.ply", match="cannot write in folder")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_the_write_leaves_no_temporary_and_no_output(seeds, tmp_path, signum):
    out = tmp_path / "out.sog"
    code = (
        "import sys, time, zipfile\n"
        "real = zipfile.ZipFile.writestr\n"
        "def slow(self, *a, **k):\n"
        "    real(self, *a, **k); time.sleep(0.2)\n"
        "zipfile.ZipFile.writestr = slow\n"
        "from sog.cli import main\n"
        f"sys.exit(main(['compress', {str(seeds['ply_binary'])!r}, {str(out)!r}, '--sort', 'none', '-q', "
        "'--profile', 'playcanvas', '--effort', '0']))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not any(p.name.startswith(".out.sog.") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.time() < deadline, "the write never started"
        time.sleep(0.02)
    proc.send_signal(signum)
    rc = proc.wait(60)
    err = proc.stderr.read()
    assert rc == 128 + signum, (rc, err)
    assert "interrupted" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------- bombs

def test_an_spz_v4_claiming_millions_of_gaussians_in_a_little_zstd_is_refused_before_inflating(tmp_path):
    import zstandard

    n = 2_000_000
    sizes = [9 * n, n, 3 * n, 3 * n, 4 * n]
    packed = [zstandard.ZstdCompressor().compress(bytes(s)) for s in sizes]
    head = struct.pack("<IIIBBBBI", 0x5053474E, 4, n, 0, 12, 0, len(sizes), 32) + bytes(12)
    toc = b"".join(struct.pack("<QQ", len(p), s) for p, s in zip(packed, sizes))
    (tmp_path / "bomb.spz").write_bytes(head + toc + b"".join(packed))
    _refused(tmp_path / "bomb.spz", "decompression bomb", memory_mb=64)


def test_a_gzip_spz_with_padding_after_its_data_is_refused_without_inflating_it(tmp_path):
    n = 10
    body = struct.pack("<IIIBBBB", 0x5053474E, 2, n, 0, 8, 0, 0) + bytes(9 * n) + bytes([128] * n) \
        + bytes(3 * n) + bytes([160] * 3 * n) + bytes([128] * 3 * n)
    (tmp_path / "padded.spz").write_bytes(gzip.compress(body + bytes(40 << 20), compresslevel=1))
    _refused(tmp_path / "padded.spz", "holds more than", memory_mb=32)


def test_an_unused_corrupt_zip_entry_is_never_inflated(seeds, tmp_path):
    path = tmp_path / "extra.sog"
    path.write_bytes(seeds["sog_v2_zip"].read_bytes())
    with zipfile.ZipFile(path, "a") as zf:
        info = zipfile.ZipInfo("unused.bin", date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, bytes(32 << 20))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("unused.bin")
    raw = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0xFF  # break its deflate stream
    path.write_bytes(bytes(raw))
    outcome = run_case(path, 10, memory_mb=64)
    assert outcome.kind == "valid", outcome


def test_a_plane_whose_header_declares_huge_sides_is_refused_before_decoding(seeds, tmp_path):
    path = tmp_path / "big_plane.sog"
    with zipfile.ZipFile(seeds["sog_v2_zip"]) as zf, zipfile.ZipFile(path, "w") as out:
        for info in zf.infolist():
            out.writestr(info, _big_image(13000) if info.filename == "scales.webp" else zf.read(info))
    _refused(path, "declares 13000x13000 pixels", memory_mb=128)


def test_an_unrelated_huge_file_in_a_sog_folder_is_not_read(seeds, tmp_path):
    folder = tmp_path / "scene"
    folder.mkdir()
    for p in seeds["sog_v2_folder"].iterdir():
        (folder / p.name).write_bytes(p.read_bytes())
    with open(folder / "backup.bin", "wb") as fh:
        fh.truncate(3 << 30)  # sparse: 3 GB to read, nothing on disk
    outcome = run_case(folder, 10, memory_mb=64)
    assert outcome.kind == "valid", outcome
    assert sog.io.read_container(folder)[2] < 1 << 20  # the size counts the files the meta names


def test_a_ply_header_longer_than_the_limit_is_refused_quickly(seeds, tmp_path):
    data = seeds["ply_binary"].read_bytes()
    path = tmp_path / "long_header.ply"
    path.write_bytes(data.replace(b"\n", b"\ncomment " + b"x" * (5 << 20) + b"\n", 1))
    _refused(path, "no end_header within", seconds=5, memory_mb=64)


# --------------------------------------------------------------------------------------------- values

def test_a_big_endian_ply_with_extra_properties_loads_like_the_little_endian_one(seeds):
    from sog.io import read_checked

    be, le = read_checked(seeds["ply_big_endian"]), read_checked(seeds["ply_binary"])
    assert sorted(be.extras) == ["nx", "ny", "nz"] and be.extras["nx"].dtype == torch.float32
    for name, tensor in le.tensors().items():
        assert torch.equal(tensor, be.tensors()[name]), name


def test_absurd_finite_values_are_refused_at_load_and_values_at_the_limit_round_trip(tmp_path):
    scene = sample_scene(300)
    scene.shN[7, 2, 1] = 3e38
    sog.save(scene, tmp_path / "absurd.ply")
    _refused(tmp_path / "absurd.ply", "shN has 1 Gaussian(s) with values beyond ±1e+09 (first at index 7")
    for profile in ("sog", "playcanvas"):
        with pytest.raises(SogError, match="beyond"):
            sog.compress(scene, tmp_path / f"{profile}.sog", sog.CompressOptions(profile=profile, sort="none"),
                         quiet=True)
        assert not (tmp_path / f"{profile}.sog").exists()
    for field in ("means", "scales", "opacities", "sh0", "shN"):
        at_limit = sample_scene(300)
        values = getattr(at_limit, field).clone()
        values.view(300, -1)[::3, 0] = 1e9
        setattr(at_limit, field, values)
        for profile in ("sog", "playcanvas"):
            out = tmp_path / f"{field}_{profile}.sog"
            sog.compress(at_limit, out, sog.CompressOptions(profile=profile, sort="none", effort=0), quiet=True)
            assert run_case(out).kind == "valid", (field, profile)  # sog reads back every file it writes


def test_a_compressed_ply_missing_a_chunk_property_names_it(seeds, tmp_path):
    data = seeds["compressed_ply"].read_bytes()
    path = tmp_path / "no_max_r.compressed.ply"
    path.write_bytes(data.replace(b"property float max_r\n", b"property float max_q\n", 1))
    _refused(path, "missing max_r")


# ------------------------------------------------------------------------------------------ meta.json

def _with_meta(source, folder, edit) -> os.PathLike:
    """A copy of the .sog ``source`` whose meta.json text is ``edit(meta)`` (a dict, dumped with Infinity/NaN)
    or the text ``edit`` returns."""
    path = folder / "edited.sog"
    with zipfile.ZipFile(source) as zf, zipfile.ZipFile(path, "w") as out:
        for info in zf.infolist():
            data = zf.read(info)
            if info.filename == "meta.json":
                meta = edit(json.loads(data))
                data = meta.encode() if isinstance(meta, str) else json.dumps(meta).encode()
            out.writestr(info, data)
    return path


def _put(path, value):
    def edit(meta):
        node = meta
        for key in path[:-1]:
            node = node[key]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return meta
    return edit


NATIVE_EDITS = [
    (("count",), float("inf"), "count"), (("count",), 10 ** 20, "count"), (("means", "bits"), 1e19, "means.bits"),
    (("means", "levels"), float("inf"), "means.levels"), (("quats", "levels"), 10 ** 20, "quats.levels"),
    (("sh0", "opacity_bits"), 100, "opacity_bits"), (("scales", "codebook", "steps", 0), 10 ** 20, "steps[0]"),
    (("scales", "codebook", "unit"), 1e300, "unit"), (("shN", "bands"), 7, "bands"), (("width",), KeyError, "width"),
    (("height",), 0, "height"), (("profile",), [], "profile"), (("quats",), [], "quats"), (("means",), 3, "means"),
    (("means", "mins"), [0, 0], "mins"), (("quats", "bits"), 10 ** 20, "quats.bits"), (("files", "sh0"), "../../etc/passwd", "plain file name"),
]


@pytest.mark.parametrize("path, value, field", NATIVE_EDITS, ids=[f[2] for f in NATIVE_EDITS])
def test_a_native_meta_with_a_bad_field_names_the_field(seeds, tmp_path, path, value, field):
    _refused(_with_meta(seeds["sog_native"], tmp_path, _put(path, value)), field)


V2_EDITS = [
    (("count",), float("nan"), "count"), (("shN", "count"), 1e20, "shN.count"), (("shN", "bands"), 2 ** 70, "bands"),
    (("scales", "codebook"), [1.0] * 300, "scales.codebook"), (("means", "files"), "means_l.webp", "means.files"),
    (("sh0",), KeyError, "sh0"), (("version",), "2", "version"),
]


@pytest.mark.parametrize("path, value, field", V2_EDITS, ids=[f[2] for f in V2_EDITS])
def test_a_sog_v2_meta_with_a_bad_field_names_the_field(seeds, tmp_path, path, value, field):
    _refused(_with_meta(seeds["sog_v2_zip"], tmp_path, _put(path, value)), field)


def test_a_layered_meta_whose_layer_is_bad_names_the_layer(seeds, tmp_path):
    _refused(_with_meta(seeds["sog_layered"], tmp_path, _put(("layers", 1, "count"), -5)), "layers[1].count")


def test_deeply_nested_or_non_finite_json_is_one_clear_error(seeds, tmp_path):
    for depth, match in ((300, "nested 301 deep"), (100_000, "nested more than 256 deep")):
        (tmp_path / str(depth)).mkdir()
        deep = _with_meta(seeds["sog_v2_zip"], tmp_path / str(depth),
                          lambda m: '{"version": 2, "x": ' + "[" * depth + "]" * depth + "}")
        _refused(deep, match)
    (tmp_path / "d").mkdir()
    huge = _with_meta(seeds["sog_v2_zip"], tmp_path / "d",
                      lambda m: json.dumps(m).replace('"count": ', '"count": 1e999, "x": ', 1))
    _refused(huge, "count is Infinity, not a finite number")


def test_flipped_bytes_in_a_deflated_meta_are_a_sog_error_naming_the_entry(seeds, tmp_path):
    path = tmp_path / "flipped.sog"
    raw = bytearray(seeds["sog_native"].read_bytes())
    with zipfile.ZipFile(seeds["sog_native"]) as zf:
        info = zf.getinfo("meta.json")
    assert info.compress_type == zipfile.ZIP_DEFLATED
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start + 5, start + info.compress_size - 5, 7):
        raw[i] ^= 0x5A
    path.write_bytes(bytes(raw))
    _refused(path, "entry meta.json")


# ------------------------------------------------------------------------------------------ LOD trees

def _lod(seeds, tmp_path, children: int, count: int = 0) -> os.PathLike:
    folder = tmp_path / "lod"
    folder.mkdir()
    (folder / "0_0").mkdir()
    for p in seeds["sog_v2_folder"].iterdir():
        (folder / "0_0" / p.name).write_bytes(p.read_bytes())
    kids = [{"lods": {"0": {"file": 0, "offset": i % 64, "count": count}}} for i in range(children)]
    kids.append({"lods": {"0": {"file": 0, "offset": 0, "count": 64}}})
    (folder / "lod-meta.json").write_text(json.dumps({"lodLevels": 1, "filenames": ["0_0/meta.json"],
                                                      "tree": {"children": kids}}))
    return folder / "lod-meta.json"


def test_a_lod_tree_with_too_many_nodes_is_refused_quickly(seeds, tmp_path):
    _refused(_lod(seeds, tmp_path, 120_000), "more than 100,000 nodes", seconds=10, memory_mb=512)


def test_a_lod_tree_of_many_small_ranges_is_gathered_at_once(seeds, tmp_path):
    scene = sample_scene(64, degree=0)
    sog.save(scene.permute(torch.arange(50_064) % 64), tmp_path / "many.ply")  # 50,064 Gaussians in one file
    kids = [{"lods": {"0": {"file": 0, "offset": i, "count": 1}}} for i in range(50_000)]
    kids.append({"lods": {"0": {"file": 0, "offset": 50_000, "count": 64}}})
    (tmp_path / "lod-meta.json").write_text(json.dumps({"lodLevels": 1, "filenames": ["many.ply"],
                                                        "tree": {"children": kids}}))
    outcome = run_case(tmp_path / "lod-meta.json", seconds=10, memory_mb=512)
    assert outcome.kind == "valid" and outcome.message == "50064 Gaussians", outcome


def test_a_lod_range_of_a_huge_count_is_refused_before_any_file_is_read(seeds, tmp_path):
    path = _lod(seeds, tmp_path, 1, count=10 ** 15)
    _refused(path, "lod count is 1000000000000000, outside 0..", seconds=5, memory_mb=128)


def test_a_lod_meta_whose_chunk_path_loops_is_one_line_exit_2(seeds, tmp_path, capsys):
    """A chunk path through a symbolic-link cycle (``loop -> loop``), and one that leads back to the lod-meta.json
    itself under another name: each one line and exit 2, never a hang."""
    path = _lod(seeds, tmp_path, 1)
    os.symlink("loop", path.parent / "loop")
    (path.parent / "back").mkdir()
    os.symlink("../lod-meta.json", path.parent / "back" / "meta.json")
    for name in ("loop/meta.json", "back/meta.json"):
        meta = json.loads(path.read_text())
        meta["filenames"] = [name]
        path.write_text(json.dumps(meta))
        assert main(["info", str(path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("sog: error:"), err


def test_a_lod_meta_may_not_point_outside_its_folder_or_at_itself(seeds, tmp_path):
    path = _lod(seeds, tmp_path, 1)
    for name in ("../../etc/passwd", "/etc/passwd", "lod-meta.json"):
        meta = json.loads(path.read_text())
        meta["filenames"] = [name]
        path.write_text(json.dumps(meta))
        _refused(path, "filenames[0] must be a relative path")


# -------------------------------------------------------------------------------------------- cameras

def _colmap(folder, truncate: int | None = None) -> None:
    folder.mkdir(parents=True)
    cams = struct.pack("<Q", 1) + struct.pack("<iiQQ", 1, 1, 64, 48) + struct.pack("<4d", 50, 50, 32, 24)
    (folder / "cameras.bin").write_bytes(cams)
    image = struct.pack("<i7di", 1, 1, 0, 0, 0, 0, 0, 4, 1) + b"view_000.png\x00" + struct.pack("<Q", 0)
    data = struct.pack("<Q", 1) + image
    (folder / "images.bin").write_bytes(data if truncate is None else data[:truncate])


def test_a_truncated_colmap_images_bin_is_an_error_not_a_loop(tmp_path):
    from sog.render.cameras import read_colmap

    _colmap(tmp_path / "ok")
    assert len(read_colmap(tmp_path / "ok")) == 1
    _colmap(tmp_path / "cut", truncate=8 + 64 + 5)  # ends inside the image name
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError("read_colmap loops")))
    signal.alarm(10)
    try:
        with pytest.raises(SogError, match="images.bin"):
            read_colmap(tmp_path / "cut")
    finally:
        signal.alarm(0)


def test_a_camera_with_width_zero_is_an_error(tmp_path):
    from sog.render.cameras import read_cameras_json

    cam = {"img_name": "a", "width": 0, "height": 10, "position": [0, 0, 0],
           "rotation": [[1, 0, 0], [0, 1, 0], [0, 0, 1]], "fx": 10, "fy": 10}
    (tmp_path / "cameras.json").write_text(json.dumps([cam]))
    with pytest.raises(SogError, match="camera 0 width"):
        read_cameras_json(tmp_path / "cameras.json")


@pytest.mark.parametrize("option, match", [(["--fov", "0"], "--fov"), (["--fov", "nan"], "--fov"),
                                           (["--size", "200000"], "--size"), (["--views", "0"], "--views")])
def test_eval_options_out_of_range_are_one_line(seeds, capsys, option, match):
    _fails(capsys, "eval", seeds["ply_binary"], seeds["ply_binary"], *option, match=match)


def test_a_seed_beyond_the_range_is_one_line(seeds, tmp_path, capsys):
    _fails(capsys, "compress", seeds["ply_binary"], tmp_path / "o.sog", "--seed", str(2 ** 70), match="--seed")
    assert list(tmp_path.iterdir()) == []
