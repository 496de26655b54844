"""The commands around the readers under hostile input (issue 28, item 5): each case ends in one line
``sog: error: ...`` and exit 2, with memory bounded by the real data, nothing left behind and nothing replaced
that the user did not name as an output."""

from __future__ import annotations

import os
import shutil
import stat

import pytest

from conftest import ROOT, peer_missing
from fuzz_corpus import make_seeds
from sog.cli import main


@pytest.fixture(scope="module")
def seeds(tmp_path_factory):
    return make_seeds(tmp_path_factory.mktemp("failure_mode_seeds"))


def _fails(capsys, *args, match: str) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("sog: error: "), err
    assert match in err, err
    return err


def _snapshot(path) -> dict:
    """Every entry under ``path`` (or ``path`` itself) with its bytes, to show that nothing changed."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        with open(path, "rb") as fh:
            return {"": fh.read()}
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs:
            out[os.path.relpath(os.path.join(root, name), path) + "/"] = None
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                out[os.path.relpath(os.path.join(root, name), path)] = fh.read()
    return out


# ------------------------------------------------------------------------------------------ data loss

def test_export_html_onto_its_own_input_is_refused_and_the_input_kept(seeds, tmp_path, capsys):
    ply = tmp_path / "same.ply"
    shutil.copyfile(seeds["ply_binary"], ply)
    before = _snapshot(ply)
    _fails(capsys, "export-html", ply, ply, "--force", match="is the input")
    assert _snapshot(ply) == before
    folder = tmp_path / "scene_folder"
    shutil.copytree(seeds["sog_v2_folder"], folder)
    before = _snapshot(folder)
    _fails(capsys, "export-html", folder, folder, "--force", match="is the input")
    _fails(capsys, "export-html", folder / "meta.json", folder, "--force", match="is the input")
    assert _snapshot(folder) == before
    assert sorted(os.listdir(tmp_path)) == ["same.ply", "scene_folder"]  # no temporary left either


def _fifo(tmp_path, name: str = "pipe"):
    path = tmp_path / name
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("command", ["decompress", "compress-folder", "compress-zip", "export-html"])
def test_force_never_replaces_a_fifo(seeds, tmp_path, capsys, command):
    fifo = _fifo(tmp_path, "pipe.sog" if command == "compress-zip" else "pipe")
    args = {"decompress": ["decompress", seeds["sog_v2_zip"]],
            "compress-folder": ["compress", seeds["ply_binary"], "--profile", "playcanvas", "--sort", "morton",
                                "--effort", "0", "-q"],
            "compress-zip": ["compress", seeds["ply_binary"], "--profile", "playcanvas", "--sort", "morton",
                             "--effort", "0", "-q"],
            "export-html": ["export-html", seeds["sog_v2_zip"]]}[command]
    args = args[:2] + [fifo] + args[2:] + ["--force"]
    _fails(capsys, *args, match="not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert os.listdir(tmp_path) == [fifo.name]


def test_force_may_replace_only_regular_files_and_sog_folders(seeds, tmp_path):
    from sog.io.atomic import replaceable

    char_devices = [p for p in ("/dev/null", "/dev/zero", "/dev/tty") if os.path.exists(p)
                    and stat.S_ISCHR(os.stat(p).st_mode)]
    assert char_devices
    for device in char_devices:  # only asked, never replaced
        assert not replaceable(device)
    assert not replaceable(_fifo(tmp_path))
    (tmp_path / "file.ply").write_bytes(b"ply")
    assert replaceable(tmp_path / "file.ply")
    os.symlink(tmp_path / "file.ply", tmp_path / "link.ply")
    assert not replaceable(tmp_path / "link.ply")
    assert replaceable(seeds["sog_v2_folder"])
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg").write_bytes(b"jpeg")
    assert not replaceable(tmp_path / "photos")


# ------------------------------------------------------------------------------------------ the page and the options

def _config_text(html: str) -> str:
    start = html.index('<script id="sog-config" type="application/json">') + len(
        '<script id="sog-config" type="application/json">')
    return html[start:html.index("</script>", start)]


def test_a_scene_name_cannot_break_out_of_the_page_config(seeds, tmp_path, capsys):
    name = "<!--<script>x.ply"
    hostile = tmp_path / name
    shutil.copyfile(seeds["ply_binary"], hostile)
    out = tmp_path / "site"
    assert main(["export-html", str(hostile), str(out), "-q", "--cdn-engine"]) == 0, capsys.readouterr().err
    html = (out / "index.html").read_text()
    text = _config_text(html)
    assert "<" not in text and ">" not in text and "&" not in text  # nothing the HTML tokenizer acts on
    import json
    assert json.loads(text)["scenes"][0]["name"] == name
    assert html.count("<script") == html.count("</script>")  # the page's own scripts are all still there


@pytest.mark.parametrize("port", ["99999", "-1", "65536"])
def test_a_port_out_of_range_is_one_line(seeds, capsys, port):
    _fails(capsys, "view", seeds["ply_binary"], "--port", port, "--no-browser", match="--port must be")


def _strict_streams(monkeypatch):
    """stdout and stderr as a terminal with a strict UTF-8 encoding has them."""
    import io
    import sys

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict", write_through=True)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    return out.buffer, err.buffer


def test_a_file_name_that_is_not_utf8_is_printed_safely(seeds, tmp_path, monkeypatch):
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.ply")
    with open(raw, "wb") as fh:
        fh.write(seeds["ply_binary"].read_bytes())
    name = os.fsdecode(raw)  # as sys.argv holds it (surrogate escapes)
    out, err = _strict_streams(monkeypatch)
    assert main(["info", name]) == 0, err.getvalue()
    assert b"caf\\udce9.ply" in out.getvalue()
    sog_out = os.fsdecode(os.path.join(os.fsencode(tmp_path), b"\xff.sog"))
    assert main(["compress", name, sog_out, "--profile", "playcanvas", "--sort", "morton", "--effort", "0"]) == 0, \
        err.getvalue()
    assert os.path.isfile(sog_out) and b"\\udcff.sog" in out.getvalue()
    err.seek(0)
    err.truncate()
    assert main(["info", name + ".missing"]) == 2
    assert err.getvalue().count(b"\n") == 1 and err.getvalue().startswith(b"sog: error: "), err.getvalue()


# ------------------------------------------------------------------------------------------ counts and the real data

def _lod_tree(folder, filenames, ranges) -> os.PathLike:
    import json

    kids = [{"lods": {"0": {"file": f, "offset": o, "count": c}}} for f, o, c in ranges]
    path = folder / "lod-meta.json"
    path.write_text(json.dumps({"lodLevels": 1, "filenames": filenames, "tree": {"children": kids}}))
    return path


def test_a_lod_meta_repeating_one_range_is_refused_before_gathering(seeds, tmp_path, capsys):
    from fuzz_corpus import run_case

    shutil.copytree(seeds["lod"].parent, tmp_path / "lod")
    path = _lod_tree(tmp_path / "lod", ["0_0/meta.json"], [(0, 0, 64)] * 16_000)
    _fails(capsys, "info", path, match="overlap")
    outcome = run_case(path, seconds=10, memory_mb=256)
    assert outcome.kind == "error" and "overlap" in outcome.message, outcome
    path = _lod_tree(tmp_path / "lod", ["0_0/meta.json"], [(0, 0, 40), (0, 32, 32)])
    _fails(capsys, "info", path, match="overlap")


def test_a_lod_meta_naming_one_file_twice_is_refused(seeds, tmp_path, capsys):
    shutil.copytree(seeds["lod"].parent, tmp_path / "lod")
    names = ["0_0/meta.json", "./0_0/meta.json", "0_0/../0_0/meta.json"]
    path = _lod_tree(tmp_path / "lod", names[:2], [(0, 0, 64), (1, 0, 64)])
    _fails(capsys, "info", path, match="same file")


def test_a_lod_meta_of_disjoint_ranges_still_reads(seeds, tmp_path):
    from fuzz_corpus import run_case

    shutil.copytree(seeds["lod"].parent, tmp_path / "lod")
    path = _lod_tree(tmp_path / "lod", ["0_0/meta.json"], [(0, 32, 32), (0, 0, 0), (0, 0, 16), (0, 16, 16)])
    outcome = run_case(path, seconds=10, memory_mb=256)
    assert outcome.kind == "valid" and outcome.message == "64 Gaussians", outcome


def _constant_sog(path, count: int, side: int) -> None:
    """A SOG v2 zip declaring ``count`` Gaussians whose planes are constant ``side`` x ``side`` WebP images: a few
    KB that decode to ``count`` Gaussians."""
    import io
    import json
    import zipfile

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (side, side), (128, 128, 128, 255)).save(buf, "WEBP", lossless=True, quality=0, method=0)
    plane = buf.getvalue()
    meta = {"version": 2, "count": count, "means": {"mins": [0, 0, 0], "maxs": [1, 1, 1],
                                                    "files": ["means_l.webp", "means_u.webp"]},
            "quats": {"files": ["quats.webp"]}, "scales": {"codebook": [0.0] * 256, "files": ["scales.webp"]},
            "sh0": {"codebook": [0.0] * 256, "files": ["sh0.webp"]}}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("meta.json", json.dumps(meta))
        for name in ("means_l.webp", "means_u.webp", "quats.webp", "scales.webp", "sh0.webp"):
            zf.writestr(name, plane)


def test_a_sog_declaring_millions_in_tiny_planes_is_refused_before_decoding(tmp_path, capsys):
    from fuzz_corpus import run_case

    path = tmp_path / "tiny.sog"
    _constant_sog(path, 1 << 22, 2048)
    assert path.stat().st_size < 64 << 10
    outcome = run_case(path, seconds=10, memory_mb=200)
    assert outcome.kind == "error" and "bytes" in outcome.message, outcome
    _fails(capsys, "info", path, match="Gaussians in only")


def test_a_native_sog_declaring_the_limit_in_tiny_planes_is_refused(seeds, tmp_path, capsys):
    import json
    import zipfile

    path = tmp_path / "native.sog"
    with zipfile.ZipFile(seeds["sog_native"]) as zf, zipfile.ZipFile(path, "w") as out:
        for info in zf.infolist():
            data = zf.read(info)
            if info.filename == "meta.json":
                meta = json.loads(data)
                meta.update(count=1 << 25, width=5793, height=5793)
                data = json.dumps(meta).encode()
            out.writestr(info, data)
    _fails(capsys, "info", path, match="Gaussians in only")


# ------------------------------------------------------------------------------------------ interrupts

def _loading_torch(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/maps") as fh:
            return "torch" in fh.read()
    except OSError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc to see torch being loaded")
@pytest.mark.parametrize("delay", [0.0, 0.3, 0.8])
def test_ctrl_c_in_the_first_second_of_compress_is_one_line(seeds, tmp_path, delay):
    """The console script does ``from sog.cli import main; sys.exit(main())``: a Ctrl-C while torch is being
    imported (``delay`` seconds after its first library is mapped) is an interrupt like any other (exit 130, one
    line), never a traceback."""
    import signal
    import subprocess
    import sys
    import time

    code = "import sys\nfrom sog.cli import main\nsys.exit(main())\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out.sog"
    proc = subprocess.Popen([sys.executable, "-c", code, "compress", str(seeds["ply_binary"]), str(out), "-q"],
                            env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _loading_torch(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, "torch was never loaded"
        time.sleep(0.005)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    rc = proc.wait(60)
    err = proc.stderr.read()
    assert "Traceback" not in err, err
    assert rc == 130 and err.count("\n") == 1 and "interrupted" in err, (rc, err)
    assert os.listdir(tmp_path) == []


def _interrupt_after(monkeypatch, name: str):
    """``os.<name>`` (mkdir or open) creates its temporary ``.*.tmp`` as usual, then a SIGTERM arrives: the window
    before the writer has the name in hand."""
    import signal

    from sog.errors import Interrupted

    real = getattr(os, name)

    def then_signal(path, *args, **kwargs):
        result = real(path, *args, **kwargs)
        if os.fsdecode(path).endswith(".tmp"):
            if name == "open":
                os.close(result)
            raise Interrupted(signal.SIGTERM)
        return result

    monkeypatch.setattr(os, name, then_signal)


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_a_sigterm_as_the_temporary_is_made_leaves_nothing(seeds, tmp_path, monkeypatch, kind):
    from sog.errors import Interrupted
    from sog.io.atomic import atomic_path

    out = tmp_path / ("site" if kind == "folder" else "out.ply")
    _interrupt_after(monkeypatch, "mkdir" if kind == "folder" else "open")
    with pytest.raises(Interrupted):
        with atomic_path(out, directory=kind == "folder"):
            pass
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_temporaries_a_killed_run_left_are_cleaned_by_the_next_run(seeds, tmp_path, capsys):
    dead = _dead_pid()
    (tmp_path / f".out.ply.{dead}-0123abcd.tmp").write_bytes(b"half a ply")
    (tmp_path / f".out.ply.{dead}-4567abcd.tmp").mkdir()
    (tmp_path / f".out.ply.{dead}-4567abcd.tmp" / "x").write_bytes(b"x")
    alive = tmp_path / f".out.ply.{os.getpid()}-89abcdef.tmp"  # a run still going on: kept
    alive.write_bytes(b"in progress")
    other = tmp_path / ".out.ply.notours.tmp"  # not a name sog makes: kept
    other.write_bytes(b"someone else's")
    assert main(["decompress", str(seeds["sog_v2_zip"]), str(tmp_path / "out.ply"), "-q"]) == 0, \
        capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == sorted(["out.ply", alive.name, other.name])


def test_an_old_output_a_killed_run_had_set_aside_is_put_back(seeds, tmp_path, capsys):
    dead = _dead_pid()
    aside = tmp_path / f".site.{dead}-0123abcd.old"
    (aside / "site").mkdir(parents=True)
    (aside / "site" / "meta.json").write_text("{}")
    code = main(["compress", str(seeds["ply_binary"]), str(tmp_path / "site"), "--profile", "playcanvas",
                 "--sort", "morton", "--effort", "0", "-q"])
    assert code == 2 and "already exists" in capsys.readouterr().err  # the old output is back, and kept
    assert sorted(os.listdir(tmp_path)) == ["site"]
    assert os.listdir(tmp_path / "site") == ["meta.json"]


# ------------------------------------------------------------------------------------------ the viewer's server

def _server(**kwargs):
    from sog.localserver import LocalServer

    pages = {"/": ("text/html", b"<p>the scene</p>")}
    return LocalServer(pages.get, **kwargs)


def _ask(port: int, request: bytes, timeout: float = 10.0) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
def test_the_server_answers_its_own_host_names(host):
    with _server() as server:
        reply = _ask(server.port, f"GET / HTTP/1.1\r\nHost: {host.format(port=server.port)}\r\n"
                     "Connection: close\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"the scene</p>")


@pytest.mark.parametrize("host", ["evil.example.com", "evil.example.com:{port}", "127.0.0.1:1", "localhost.evil.com",
                                  None])
def test_a_request_for_another_host_is_refused(host):
    """DNS rebinding: a page of another site that resolves its own name to 127.0.0.1 sends its Host header."""
    with _server() as server:
        header = "" if host is None else f"Host: {host.format(port=server.port)}\r\n"
        reply = _ask(server.port, f"GET / HTTP/1.1\r\n{header}Connection: close\r\n\r\n".encode())
    assert reply.startswith(b"HTTP/1.1 421") and b"the scene" not in reply


def test_long_request_lines_are_414_and_not_remembered():
    with _server() as server:
        host = f"Host: 127.0.0.1:{server.port}\r\n"
        for _ in range(200):
            reply = _ask(server.port, f"GET /{'a' * 60_000} HTTP/1.1\r\n{host}Connection: close\r\n\r\n".encode())
            assert reply.startswith(b"HTTP/1.1 414"), reply[:80]
        assert sum(map(len, server.requests)) < 64 << 10


def test_an_idle_connection_is_closed_and_connections_are_bounded():
    import socket
    import threading
    import time

    before = threading.active_count()
    with _server(idle_timeout=0.5, max_connections=8) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(40)]
        time.sleep(0.2)
        assert threading.active_count() - before <= 8 + 1  # the serving thread and at most 8 handlers
        for sock in idle:  # every one is closed by the server: refused at once, or after its idle timeout
            assert sock.recv(1) == b""
            sock.close()
        host = f"Host: 127.0.0.1:{server.port}\r\n"
        assert _ask(server.port, f"GET / HTTP/1.1\r\n{host}Connection: close\r\n\r\n".encode()).startswith(
            b"HTTP/1.1 200")


# ------------------------------------------------------------------------------------------ out of memory

TORCH_OOM = "DefaultCPUAllocator: can't allocate memory: you tried to allocate 53687091200 bytes. Error code 12"


def test_torch_out_of_memory_in_a_command_is_one_line(seeds, tmp_path, capsys, monkeypatch):
    import sog.pipeline

    def exhausted(*args, **kwargs):
        raise RuntimeError(TORCH_OOM + "\n(more lines from torch)")

    monkeypatch.setattr(sog.pipeline, "_grid_order", exhausted)
    _fails(capsys, "compress", seeds["ply_binary"], tmp_path / "out.sog", match="out of memory")
    assert os.listdir(tmp_path) == []


def test_torch_out_of_memory_while_reading_is_not_called_a_malformed_file(seeds, capsys, monkeypatch):
    import sog.io

    def exhausted(*args, **kwargs):
        raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(sog.io, "read_ply", exhausted)
    err = _fails(capsys, "info", seeds["ply_binary"], match="not enough memory")
    assert "malformed" not in err


# ------------------------------------------------------------------------------------------ decoders called directly

def test_native_decode_called_directly_checks_its_meta_first():
    import math

    from conftest import small_scene
    from sog.codec import native
    from sog.errors import SogError

    meta, files = native.encode(small_scene(100), 10, 10)
    bad = {**meta, "means": {**meta["means"], "mins": [math.nan, 0.0, 0.0]}}
    with pytest.raises(SogError, match=r"means\.mins\[0\]"):
        native.decode(bad, files.__getitem__)
    with pytest.raises(SogError, match="more than sog's limit"):
        native.decode({**meta, "count": 1 << 40}, files.__getitem__)
    assert len(native.decode(meta, files.__getitem__)) == 100


def _edited_zip(source, path, edit):
    import json
    import zipfile

    with zipfile.ZipFile(source) as zf, zipfile.ZipFile(path, "w") as out:
        for info in zf.infolist():
            data = zf.read(info)
            if info.filename == "meta.json":
                data = json.dumps(edit(json.loads(data))).encode()
            out.writestr(info, data)
    return path


def test_extreme_playcanvas_position_bounds_are_one_error_and_no_warning(seeds, tmp_path, capsys):
    """SOG v2 positions are stored log-transformed: bounds beyond log1p(2e9) cannot come from a scene sog reads,
    and expm1 of them overflowed with a RuntimeWarning line before the error."""
    import warnings

    def edit(meta):
        meta["means"].update(mins=[-1.9e9] * 3, maxs=[1.9e9] * 3)
        return meta

    path = _edited_zip(seeds["sog_v2_zip"], tmp_path / "extreme.sog", edit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        err = _fails(capsys, "info", path, match="means.mins[0]")
    assert [str(w.message) for w in caught] == [], err


# ------------------------------------------------------------------------------------------ export-html's folder

def _local_engine_or_skip():
    from sog.peers import find_playcanvas

    engine = find_playcanvas(ROOT)
    if engine is None:
        peer_missing("no node_modules/playcanvas (npm ci)")
    return engine


def test_export_html_replaces_its_own_earlier_folder_with_force(seeds, tmp_path, capsys):
    out = tmp_path / "site"
    assert main(["export-html", str(seeds["sog_v2_zip"]), str(out), "-q", "--cdn-engine"]) == 0, \
        capsys.readouterr().err
    assert (out / "sog-export.json").is_file()
    assert main(["export-html", str(seeds["ply_binary"]), str(out), "-q", "--cdn-engine", "--force"]) == 0, \
        capsys.readouterr().err
    assert (out / "scene.sograw").is_file() and not (out / "scene.sog").exists()
    assert sorted(os.listdir(tmp_path)) == ["site"]
    (out / "notes.txt").write_text("mine")  # a folder holding anything else is not replaced
    _fails(capsys, "export-html", seeds["sog_v2_zip"], out, "--cdn-engine", "--force", match="refusing to replace")
    assert (out / "notes.txt").read_text() == "mine"


def test_export_html_works_offline_by_default(seeds, tmp_path, capsys):
    engine = _local_engine_or_skip()
    out = tmp_path / "site"
    assert main(["export-html", str(seeds["sog_v2_zip"]), str(out), "-q"]) == 0, capsys.readouterr().err
    assert (out / "playcanvas.mjs").read_bytes() == engine.read_bytes()
    html = (out / "index.html").read_text()
    assert "https://" not in html and "./playcanvas.mjs" in html


def test_export_html_without_a_local_engine_says_how_to_get_one(seeds, tmp_path, capsys, monkeypatch):
    import sog.viewer.export

    monkeypatch.setattr(sog.viewer.export, "find_playcanvas", lambda *a, **k: None)
    _fails(capsys, "export-html", seeds["sog_v2_zip"], tmp_path / "site", match="--cdn-engine")
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------------------ eval --save-views

def test_save_views_never_writes_into_an_existing_folder_of_other_files(seeds, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "README.txt").write_text("my notes")
    _fails(capsys, "eval", seeds["ply_binary"], seeds["sog_v2_zip"], "--views", "2", "--size", "32",
           "--save-views", photos, match="--save-views")
    assert os.listdir(photos) == ["README.txt"] and (photos / "README.txt").read_text() == "my notes"


def test_save_views_writes_a_new_folder_whole(seeds, tmp_path, capsys):
    out = tmp_path / "views"
    assert main(["eval", str(seeds["ply_binary"]), str(seeds["sog_v2_zip"]), "--views", "2", "--size", "32",
                 "--save-views", str(out), "-q", "--device", "cpu"]) == 0, capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["views"]
    assert "README.txt" in os.listdir(out) and len([n for n in os.listdir(out) if n.endswith(".png")]) == 2


# ------------------------------------------------------------------------------------------ ASCII PLY

def test_an_ascii_ply_line_padded_far_beyond_its_values_is_refused_in_bounded_memory(seeds, tmp_path):
    from fuzz_corpus import run_case

    data = seeds["ply_ascii"].read_bytes()
    start = data.index(b"end_header\n") + len(b"end_header\n")
    lines = data[start:].split(b"\n")
    lines[1] += b" " * (50 << 20)  # legal whitespace, 50 MB of it, on one line of 62 values
    path = tmp_path / "padded.ply"
    path.write_bytes(data[:start] + b"\n".join(lines))
    outcome = run_case(path, seconds=20, memory_mb=48)
    assert outcome.kind == "error" and "line 2" in outcome.message, outcome


def test_an_ascii_ply_still_reads_with_any_line_ending(seeds, tmp_path):
    import sog

    data = seeds["ply_ascii"].read_bytes()
    for ending in (b"\r\n", b"\r"):
        path = tmp_path / "endings.ply"
        path.write_bytes(data.replace(b"\n", ending))
        assert len(sog.load(path)) == len(sog.load(seeds["ply_ascii"]))
