"""What sog writes: the output's extension picks the format (one registry, `sog.io.WRITERS`); an extension sog
cannot write is refused before anything is created."""

from __future__ import annotations

import json
import zipfile

import pytest

import sog
from conftest import small_scene
from sog.cli import main
from sog.errors import SogError
from sog.io import WRITERS, output_format, write_ply


def run(*args):
    return main([str(a) for a in args])


def _fails(capsys, *args, match: str):
    code = run(*args)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("sog: error: "), err
    assert match in err, err


@pytest.fixture
def scene_ply(tmp_path):
    path = tmp_path / "in" / "scene.ply"
    path.parent.mkdir()
    write_ply(small_scene(300, seed=4, sh_degree=1), path)
    return path


@pytest.mark.parametrize("name, fmt", [
    ("out.sog", "sog"), ("OUT.SOG", "sog"), ("out", "sog-folder"), ("folder/meta.json", "sog-folder"),
    ("out.ply", "ply"),
])
def test_the_extension_names_the_format(name, fmt):
    assert output_format(name) == fmt


def test_every_registered_ending_selects_its_own_format():
    for fmt, writer in WRITERS.items():
        for ending in writer.endings:
            assert output_format(f"scene{ending}") == fmt


def test_an_explicit_format_wins_and_an_unknown_one_is_refused():
    assert output_format("scene.bin", "sog") == "sog"
    with pytest.raises(SogError, match="unknown output format"):
        output_format("scene.sog", "jpeg")


@pytest.mark.parametrize("name", ["out.bin", "out.webp", "out.json", "out.splat"])
def test_an_extension_sog_cannot_write_is_one_line_exit_2_and_nothing_is_created(tmp_path, scene_ply, capsys, name):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _fails(capsys, "compress", scene_ply, out_dir / name, "--sort", "none", "-q", match="cannot write")
    assert list(out_dir.iterdir()) == []


def test_compress_to_plain_ply_is_refused_pointing_at_convert(tmp_path, scene_ply, capsys):
    _fails(capsys, "compress", scene_ply, tmp_path / "out.ply", "--sort", "none", "-q", match="sog convert")
    assert not (tmp_path / "out.ply").exists()


def test_sog_outputs_are_a_zip_for_sog_and_a_folder_without_an_extension(tmp_path, scene_ply):
    assert run("compress", scene_ply, tmp_path / "a.sog", "--sort", "none", "--effort", "0", "-q") == 0
    assert zipfile.is_zipfile(tmp_path / "a.sog")
    assert run("compress", scene_ply, tmp_path / "b", "--sort", "none", "--effort", "0", "-q") == 0
    assert (tmp_path / "b" / "meta.json").is_file()
    assert run("compress", scene_ply, tmp_path / "c" / "meta.json", "--sort", "none", "--effort", "0", "-q") == 0
    assert (tmp_path / "c" / "meta.json").is_file()
    assert run("compress", scene_ply, tmp_path / "d.bin", "--format", "sog", "--sort", "none", "--effort", "0",
               "-q") == 0
    assert zipfile.is_zipfile(tmp_path / "d.bin")


def test_convert_goes_between_every_format_with_every_gaussian(tmp_path, scene_ply, capsys):
    chain = ["a.spz", "b.glb", "c.compressed.ply", "d.ply", "e.sog", "f"]
    source = scene_ply
    for name in chain:
        assert run("convert", source, tmp_path / name, "-q") == 0, capsys.readouterr().err
        assert len(sog.load(tmp_path / name)) == 300, name
        source = tmp_path / name
    assert zipfile.is_zipfile(tmp_path / "e.sog") and (tmp_path / "f" / "meta.json").is_file()


def test_convert_between_sog_containers_keeps_the_planes_byte_for_byte(tmp_path, scene_ply, capsys):
    assert run("compress", scene_ply, tmp_path / "a.sog", "--sort", "none", "--effort", "0", "-q") == 0
    assert run("convert", tmp_path / "a.sog", tmp_path / "folder", "--json") == 0
    assert json.loads(capsys.readouterr().out)["how"] == "repackaged"
    with zipfile.ZipFile(tmp_path / "a.sog") as zf:
        planes = {name: zf.read(name) for name in zf.namelist() if name != "meta.json"}
    assert planes and all((tmp_path / "folder" / name).read_bytes() == data for name, data in planes.items())


def test_convert_to_the_same_format_copies_the_bytes(tmp_path, scene_ply, capsys):
    assert run("convert", scene_ply, tmp_path / "a.spz", "-q") == 0
    assert run("convert", tmp_path / "a.spz", tmp_path / "b.spz", "--json") == 0
    assert json.loads(capsys.readouterr().out)["how"] == "copied"
    assert (tmp_path / "a.spz").read_bytes() == (tmp_path / "b.spz").read_bytes()


def test_convert_refuses_an_unknown_extension_and_creates_nothing(tmp_path, scene_ply, capsys):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _fails(capsys, "convert", scene_ply, out_dir / "scene.xyz", match="cannot write .xyz")
    assert list(out_dir.iterdir()) == []


@pytest.mark.parametrize("name, options, match", [
    ("s.glb", ["--psnr", "40", "--keep-all"], "no settings of its own to search"),
    ("s.compressed.ply", ["--quality", "small", "--reduce", "0.5"], "no settings of its own to search"),
    ("s.spz", ["--layers", "2"], "--layers applies to SOG outputs")])
def test_compress_options_a_format_does_not_have_are_refused(tmp_path, scene_ply, capsys, name, options, match):
    """A format with no settings of its own (GLB, compressed PLY) takes --psnr and --quality small only as a count
    search, so a target with the count fixed is refused; --layers is SOG's alone."""
    _fails(capsys, "compress", scene_ply, tmp_path / name, *options, "-q", match=match)
    assert not (tmp_path / name).exists()


def test_an_interruption_inside_a_zip_entry_propagates_as_itself(monkeypatch):
    """A signal (`Interrupted`) that lands while a zip entry is open must reach the CLI as itself, not as the
    ValueError that closing the archive with an open entry raises (a SIGTERM then exited 3 instead of 143)."""
    import io
    import zipfile

    from sog.errors import Interrupted
    from sog.io.container import _write_zip

    held = []

    def cut_off(self, info, data, *args, **kwargs):
        held.append(self.open(info, "w"))  # the entry stays open, as when the signal lands mid-write
        held[-1].write(data[:4])
        raise Interrupted(15)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", cut_off)
    with pytest.raises(Interrupted):
        _write_zip(io.BytesIO(), b"{}", {"means_l.webp": b"\0" * 64}, False)
