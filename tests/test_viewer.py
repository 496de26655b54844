"""`sog view` / `sog export-html`: the page decodes .sog files in the browser exactly as `sog.load` does, renders
them with the PlayCanvas engine from sog eval's cameras, and shows the PSNR of the view and clear errors.

Browser tests run headless Chromium (Debian ``chromium``, SwiftShader WebGL) through playwright and need the
engine from ``npm ci``; they skip when a peer is missing, and fail instead under ``SOG_REQUIRE_PEERS=1``.
Scenes are small (playbot's 8,406-Gaussian LOD level, kacytran's 9,080) and canvases 256 px: SwiftShader is
slow. The big shared scenes are in the ``slow`` tests.
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import sog
from conftest import peer_missing, shared_path
from sog.datasets import scene_path
from sog.errors import SogError
from sog.peers import CHROMIUM_ARGS, ENGINE_SRI, find_chromium, find_playcanvas, sri
from sog.render.engine import missing_peers
from sog.viewer import ViewerConfig, ViewerServer, export_html, prepare_scene
from sog.viewer.poses import camera_pose
from sog.viewer.raw import raw_bytes, read_raw
from sog.viewer.scenes import Scene, unchecked_scene

ROOT = Path(__file__).resolve().parents[1]
#: playbot's 8,406-Gaussian LOD level (its SOG folder's meta.json)
PLAYBOT_4 = scene_path("playbot-4_0")
SIZE = 256  # sog eval's default view size


@pytest.fixture(scope="module")
def browser():
    missing = ", ".join(missing_peers())        # the engine renderer's peers are the page's: one check
    if missing:
        peer_missing(f"missing {missing}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=find_chromium(), args=list(CHROMIUM_ARGS))
        yield b
        b.close()


@pytest.fixture(scope="module")
def playbot_files(tmp_path_factory):
    """playbot's 8,406-Gaussian level as (a) a PLY, (b) our native .sog of it (3 importance layers: the layered
    version-3 file), (c) `sog decompress` of (b), and (d) a plain single-grid native .sog."""
    d = tmp_path_factory.mktemp("playbot")
    splats = sog.load(shared_path("playbot-4_0"))
    sog.save(splats, d / "a.ply")
    sog.compress(d / "a.ply", d / "b.sog", sog.CompressOptions(profile="native", sort="morton", profile_options={
        "layers": 3, "layer_min": 2000}), quiet=True)
    sog.decompress(d / "b.sog", d / "c.ply")
    sog.compress(d / "a.ply", d / "d.sog",
                 sog.CompressOptions(profile="native", sort="morton", profile_options={"layers": 1}), quiet=True)
    return {k: d / f"{k}{ext}" for k, ext in (("a", ".ply"), ("b", ".sog"), ("c", ".ply"), ("d", ".sog"))}


def _server(scenes: list[Scene], size=None) -> ViewerServer:
    return ViewerServer(ViewerConfig(scenes=scenes, size=size), port=0, engine_path=find_playcanvas(ROOT))


def _reference(path) -> Scene:
    """`sog.load` of ``path`` as a raw float scene: what the browser's own decoding must equal."""
    splats = sog.load(path)
    return Scene(name="reference", format="raw", kind="raw", data=raw_bytes(splats), count=len(splats),
                 sh_degree=splats.sh_degree, bytes=1)


COMPARE_JS = """async (urls) => {
  const dec = await import('/sog-decoder.js');
  const get = async (u) => new Uint8Array(await (await fetch(u)).arrayBuffer());
  const t0 = performance.now();
  const a = await dec.decodeScene(await get(urls[0]));
  const seconds = (performance.now() - t0) / 1000;
  const b = await dec.decodeScene(await get(urls[1]));
  const out = {count: a.count, K: a.K, refCount: b.count, refK: b.K, format: a.format, seconds, arrays: {}};
  for (const key of ['means', 'scales', 'quats', 'opacities', 'sh0', 'shN']) {
    const x = a[key], y = b[key];
    let maxRel = 0, maxAbs = 0, unequal = 0;
    for (let i = 0; i < Math.min(x.length, y.length); i++) {
      const d = Math.abs(x[i] - y[i]);
      if (d > 0) {
        unequal++;
        maxAbs = Math.max(maxAbs, d);
        maxRel = Math.max(maxRel, d / Math.max(Math.abs(y[i]), 1e-30));
      }
    }
    out.arrays[key] = {length: x.length, refLength: y.length, maxAbs, maxRel, unequal};
  }
  return out;
}"""


def _browser_vs_load(browser, path) -> dict:
    """Decode ``path`` in the page and compare every array with `sog.load` of it."""
    scene = prepare_scene(path)
    assert scene.kind == "sog"
    with _server([scene, _reference(path)]) as server:
        page = browser.new_page()
        try:
            page.goto(server.url + "style.css")
            return page.evaluate(COMPARE_JS, ["/scene/0.sog", "/scene/1.sograw"])
        finally:
            page.close()


def _assert_equal_within_float32(result: dict) -> None:
    assert result["count"] == result["refCount"] and result["K"] == result["refK"]
    for key, r in result["arrays"].items():
        assert r["length"] == r["refLength"], key
        # one float32 rounding apart at most (the decoders compute in float64 and store float32)
        assert r["maxRel"] <= 2.0 ** -23, (key, r)


# ------------------------------------------------------------------------------------------ without a browser

def test_raw_float_file_round_trips_a_scene(playbot_files):
    splats = sog.load(playbot_files["a"])
    back = read_raw(raw_bytes(splats))
    for name in ("means", "scales", "quats", "opacities", "sh0", "shN"):
        assert np.array_equal(getattr(back, name).numpy(), getattr(splats, name).numpy().astype(np.float32)), name


def test_sog_files_are_served_as_they_are_and_other_formats_as_raw_floats(playbot_files, tmp_path):
    native = prepare_scene(playbot_files["b"])
    assert native.kind == "sog" and native.profile == "sog" and native.data == playbot_files["b"].read_bytes()
    assert native.count == 8406 and native.sh_degree == 2 and native.bytes == playbot_files["b"].stat().st_size
    ply = prepare_scene(playbot_files["a"])
    assert ply.kind == "raw" and read_raw(ply.data).means.shape == (8406, 3)
    folder = prepare_scene(PLAYBOT_4.parent)  # a SOG folder: its files bundled into a stored zip, byte for byte
    assert folder.kind == "sog" and folder.profile == "playcanvas"
    with zipfile.ZipFile(io.BytesIO(folder.data)) as zf:
        for info in zf.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            assert zf.read(info) == (PLAYBOT_4.parent / info.filename).read_bytes()


def test_a_bad_file_is_a_sog_error_before_anything_is_served(playbot_files, tmp_path):
    bad = tmp_path / "bad.sog"
    data = bytearray(playbot_files["b"].read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\0" * 64
    bad.write_bytes(bytes(data))
    with pytest.raises(SogError):
        prepare_scene(bad)
    with pytest.raises(SogError):
        prepare_scene(tmp_path / "missing.ply")


def test_sog_view_of_a_corrupt_file_exits_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.sog"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    proc = subprocess.run([sys.executable, "-m", "sog.cli", "view", str(bad), "--no-browser", "--port", "0"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert proc.stderr.startswith("sog: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_the_server_listens_on_localhost_only_and_serves_nothing_but_its_routes(playbot_files):
    import urllib.error
    import urllib.request

    with _server([prepare_scene(playbot_files["b"])]) as server:
        assert server.httpd.server_address[0] == "127.0.0.1"
        body = urllib.request.urlopen(server.url, timeout=10).read().decode()
        assert "sog-config" in body and "importmap" in body
        assert urllib.request.urlopen(server.url + "scene/0.sog", timeout=10).read() == \
            playbot_files["b"].read_bytes()
        for path in ("../pyproject.toml", "static/viewer.js/../../cli.py", "scene/1.sog", "node_modules"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(server.url + path, timeout=10)
            assert err.value.code == 404


def test_the_local_engine_is_the_pinned_file():
    local = find_playcanvas(ROOT)
    if local is None:
        peer_missing("no node_modules/playcanvas (npm ci)")
    assert sri(local.read_bytes()) == ENGINE_SRI
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["playcanvas"]
    assert json.loads((local.parents[1] / "package.json").read_text())["version"] == pinned


def test_export_html_with_cdn_engine_loads_the_engine_from_the_pinned_cdn_with_its_hash(playbot_files, tmp_path):
    out = tmp_path / "site"
    result = export_html(playbot_files["b"], out, cdn_engine=True)
    assert {"index.html", "viewer.js", "sog-decoder.js", "scene.sog"} <= set(result["files"])
    assert "playcanvas.mjs" not in result["files"]
    html = (out / "index.html").read_text()
    assert "https://cdn.jsdelivr.net/npm/playcanvas@2.23.3/build/playcanvas.mjs" in html and ENGINE_SRI in html
    assert (out / "scene.sog").read_bytes() == playbot_files["b"].read_bytes()
    with pytest.raises(SogError):
        export_html(playbot_files["b"], out, cdn_engine=True)  # exists: refused without overwrite


# ------------------------------------------------------------------------------------------ in the browser

def _as_version_4(path, out):
    """The plain native .sog ``path`` rewritten as version 4 wrote it: its SH palette one grey row of 64 entries per
    coefficient and colour (version 5 holds a coefficient's colours in one RGB texel)."""
    from sog.codec.image import decode_image, encode_image

    with zipfile.ZipFile(path) as zf:
        entries = {name: zf.read(name) for name in zf.namelist()}
    meta = json.loads(entries["meta.json"])
    shn, name = meta["shN"], meta["files"]["shN_centroids"]
    k, c = {1: 3, 2: 8, 3: 15}[shn["bands"]], shn["count"]
    idx = decode_image(entries[name], name, 3).reshape(-1, k, 3)[:c].transpose(0, 2, 1).reshape(c, 3 * k)
    rows = -(-c // 64)
    pal = np.zeros((rows * 64, 3 * k), np.uint8)
    pal[:c] = idx
    entries[name] = encode_image(pal.reshape(rows, 64, 3 * k).transpose(0, 2, 1).reshape(rows * 3 * k, 64, 1)
                                 .repeat(3, axis=2), name.rsplit(".", 1)[1])
    shn.pop("layout")
    entries["meta.json"] = json.dumps({**meta, "version": 4}).encode()
    with zipfile.ZipFile(out, "w") as zf:
        for key, data in entries.items():
            zf.writestr(key, data)
    return out


def test_browser_decoder_equals_sog_load_on_layered_plain_native_and_sog_v2_files(browser, playbot_files, tmp_path):
    formats = []
    v4 = _as_version_4(playbot_files["d"], tmp_path / "v4.sog")
    for path in (playbot_files["b"], playbot_files["d"], v4, PLAYBOT_4):
        result = _browser_vs_load(browser, path)
        print(path, json.dumps(result))
        _assert_equal_within_float32(result)
        formats.append(result["format"])
    assert formats == ["sog-native", "sog-native", "sog-native", "sog-v2"]
    assert json.loads(zipfile.ZipFile(playbot_files["b"]).read("meta.json"))["version"] == 3  # layered
    assert json.loads(zipfile.ZipFile(playbot_files["d"]).read("meta.json"))["version"] == 5  # one grid
    assert torch.equal(sog.load(v4).shN, sog.load(playbot_files["d"]).shN)  # the older palette layout, same values


def test_browser_decoder_equals_sog_load_on_kacytran_sh3(browser, tmp_path):
    kacy = shared_path("kacytran")
    out = tmp_path / "kacy.sog"
    sog.compress(kacy, out, sog.CompressOptions(profile="native", sort="morton"), quiet=True)
    result = _browser_vs_load(browser, out)
    print(json.dumps(result))
    assert result["K"] == 15
    _assert_equal_within_float32(result)


def _open(browser, server, timeout_ms=120_000):
    page = browser.new_page(viewport={"width": 2 * SIZE + 40, "height": SIZE + 120})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    page.wait_for_function("window.sogViewer && window.sogViewer.state !== 'loading'", timeout=timeout_ms)
    assert not errors, errors
    return page


def _png(page, i) -> np.ndarray:
    from PIL import Image

    url = page.evaluate(f"window.sogViewer.png({i})")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"), np.float64)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def screenshot_figures(browser, original, compressed, decompressed, view: int = 0) -> dict:
    """Render (a) ``original``, (b) ``compressed`` (decoded in the browser), (c) ``decompressed`` from sog eval's
    judging camera ``view`` at 256 px; returns the PSNRs b-c, a-b (the page's and ours) and sog eval's a-b."""
    from sog.render.views import judging_cameras

    cams, _ = judging_cameras(sog.load(original), original, size=SIZE)
    pose = camera_pose(cams[view])
    out = {}
    for pair, files in (("bc", (compressed, decompressed)), ("ab", (original, compressed))):
        with _server([prepare_scene(f) for f in files], size=(cams[view].width, cams[view].height)) as server:
            page = _open(browser, server)
            try:
                assert page.evaluate("window.sogViewer.state") == "ready", page.evaluate("window.sogViewer.error")
                page.evaluate("(pose) => window.sogViewer.setPose(pose)", pose)
                page_psnr = page.evaluate("window.sogViewer.psnr()")
                shown = page.locator("#psnr").inner_text()
                first, second = _png(page, 0), _png(page, 1)
            finally:
                page.close()
        out[pair] = {"page_psnr": page_psnr, "psnr": _psnr(first, second), "shown": shown,
                     "mean_brightness": float(first.mean())}
    # sog eval's figure for this view: its renderer and PSNR on the same camera (rendering only this one view)
    from sog import metrics
    from sog.render import RasterConfig, render

    ref, test = (render(sog.load(f), [cams[view]], config=RasterConfig(background=(0.0, 0.0, 0.0)))
                 for f in (original, compressed))
    out["eval_psnr_view"] = metrics.view_psnrs(ref, test)[0]
    return out


def test_native_sog_in_the_browser_renders_as_its_decompressed_ply_and_near_sog_eval(browser, playbot_files):
    f = screenshot_figures(browser, playbot_files["a"], playbot_files["b"], playbot_files["c"])
    print(json.dumps(f))
    assert f["bc"]["mean_brightness"] > 5  # the scene is on screen, not a black canvas
    assert f["bc"]["psnr"] >= 45, f
    assert abs(f["bc"]["page_psnr"] - f["bc"]["psnr"]) < 0.01 or f["bc"]["psnr"] == float("inf")
    # another renderer (PlayCanvas, not sog's CPU rasteriser) of the same view: close to sog eval's figure
    assert abs(f["ab"]["psnr"] - f["eval_psnr_view"]) < 3.0, f
    assert f["ab"]["shown"].startswith("PSNR of this view: ") and f["ab"]["shown"].endswith(" dB")
    assert f"{f['ab']['page_psnr']:.2f}" in f["ab"]["shown"]


def test_a_corrupt_sog_shows_the_decoders_error_on_the_page(browser, playbot_files, tmp_path):
    bad = tmp_path / "bad.sog"
    data = bytearray(playbot_files["b"].read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with _server([unchecked_scene(bad)]) as server:
        page = _open(browser, server)
        try:
            assert page.evaluate("window.sogViewer.state") == "error"
            message = page.locator("#error").inner_text()
        finally:
            page.close()
    assert message.startswith("sog: error: corrupt .sog zip (bad CRC in ")


def test_a_file_sog_cannot_read_shows_its_error_on_the_page(browser, tmp_path):
    config = ViewerConfig(error="bad.ply: not a Gaussian-splat file sog can read")
    with ViewerServer(config, port=0, engine_path=find_playcanvas(ROOT)) as server:
        page = _open(browser, server)
        try:
            message = page.locator("#error").inner_text()
        finally:
            page.close()
    assert message == "sog: error: bad.ply: not a Gaussian-splat file sog can read"


def test_an_exported_folder_works_from_a_plain_static_web_server(browser, playbot_files, tmp_path):
    out = tmp_path / "site"
    export_html(playbot_files["b"], out)  # the default: the local engine copied in
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(out))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        page = browser.new_page(viewport={"width": 400, "height": 300})
        page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/index.html?size=160x120")
        page.wait_for_function("window.sogViewer && window.sogViewer.state !== 'loading'", timeout=120_000)
        state = page.evaluate("window.sogViewer.state")
        scenes = page.evaluate("window.sogViewer.scenes")
        page.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert state == "ready"
    assert scenes[0]["count"] == 8406 and scenes[0]["format"] == "sog-native"


# ------------------------------------------------------------------------------------------ the big scenes

@pytest.mark.slow
@pytest.mark.parametrize("name", ["plant", "tarot", "playbot-2_0"])
def test_browser_decoder_equals_sog_load_on_the_big_shared_scenes(browser, name, tmp_path):
    source = shared_path(name)
    out = tmp_path / "big.sog"
    # default layers: 3 for these
    sog.compress(source, out, sog.CompressOptions(profile="native", sort="morton"), quiet=True)
    result = _browser_vs_load(browser, out)
    print(source.name, json.dumps(result))
    _assert_equal_within_float32(result)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["plant", "playbot-2_0"])
def test_big_scenes_in_the_browser_render_as_their_decompressed_ply(browser, name, tmp_path):
    source = shared_path(name)
    sog.save(sog.load(source), tmp_path / "a.ply")
    sog.compress(tmp_path / "a.ply", tmp_path / "b.sog", sog.CompressOptions(profile="native", sort="morton"),
                 quiet=True)
    sog.decompress(tmp_path / "b.sog", tmp_path / "c.ply")
    f = screenshot_figures(browser, tmp_path / "a.ply", tmp_path / "b.sog", tmp_path / "c.ply")
    print(source.name, json.dumps(f))
    assert f["bc"]["psnr"] >= 45, f
    # the engine shows more error than sog's CPU rasteriser does once the file is close to its original (its 2D
    # dilation, kernel cut-off and 2-px culling differ, `sog.render.engine`; each attribute's error renders 9-15 dB
    # larger there): with the native default chosen on tuning views, sog eval's view is 56.2 dB on plant and 50.3 on
    # playbot 2_0 where the page shows 48.1 and 43.7 (the far-view default of before: 45.9 on plant). So the
    # page's figure is bounded: not above sog eval's, and no broken view (40 dB)
    assert 40.0 <= f["ab"]["psnr"] <= f["eval_psnr_view"] + 1.0, f


def test_orbit_fly_and_reset_move_the_shared_camera_and_redraw(browser, playbot_files):
    scenes = [prepare_scene(playbot_files["b"]), prepare_scene(playbot_files["c"])]
    with _server(scenes, size=(160, 120)) as server:
        page = _open(browser, server)
        try:
            pose = "(() => { const p = window.sogViewer.rig.pose(); return [...p.position, ...p.back]; })()"
            start, picture = page.evaluate(pose), _png(page, 0)
            box = page.locator("#canvas0").bounding_box()
            x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            page.mouse.move(x, y)
            page.mouse.down()
            page.mouse.move(x + 60, y + 10, steps=4)
            page.mouse.up()
            page.evaluate("window.sogViewer.frame()")
            orbited, turned = page.evaluate(pose), _png(page, 0)
            both = [_png(page, 1), turned]
            page.keyboard.down("w")
            page.wait_for_timeout(300)
            page.keyboard.up("w")
            page.evaluate("window.sogViewer.frame()")
            flown = page.evaluate(pose)
            page.keyboard.press("r")
            page.evaluate("window.sogViewer.frame()")
            reset, again = page.evaluate(pose), _png(page, 0)
        finally:
            page.close()
    assert np.abs(np.subtract(orbited, start)).max() > 1e-3 and np.abs(turned - picture).mean() > 0.5
    assert _psnr(*both) >= 45  # one camera: the two views of the same scene still match after the move
    assert np.allclose(flown[3:], orbited[3:]) and np.abs(np.subtract(flown[:3], orbited[:3])).max() > 1e-3
    assert np.allclose(reset, start, atol=1e-6) and _psnr(again, picture) >= 45


def test_the_browser_refuses_an_engine_file_whose_hash_is_not_the_pinned_one(browser, playbot_files):
    from sog.viewer.page import EngineSource

    with _server([prepare_scene(playbot_files["d"])], size=(64, 48)) as server:
        server.engine = EngineSource(server.engine.url, integrity="sha384-" + "A" * 64)  # what a tampered copy gets
        page = _open(browser, server)
        try:
            state, message = page.evaluate("window.sogViewer.state"), page.locator("#error").inner_text()
        finally:
            page.close()
    assert state == "error" and message.startswith("sog: error: cannot load the PlayCanvas engine from ")


PLANES_JS = """async (cases) => {
  const dec = await import('/sog-decoder.js');
  const out = [];
  for (const c of cases) {
    const bytes = Uint8Array.from(atob(c.data), (ch) => ch.charCodeAt(0));
    const img = await dec.decodeImage(bytes, c.name, c.channels);
    out.push({width: img.width, height: img.height, data: btoa(String.fromCharCode(...img.data))});
  }
  return out;
}"""

ZIP_JS = """async (cases) => {
  const dec = await import('/sog-decoder.js');
  const out = [];
  for (const data of cases) {
    try {
      const entries = await dec.readZip(Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0)));
      out.push(Object.fromEntries([...entries].map(([k, v]) => [k, btoa(String.fromCharCode(...v))])));
    } catch (err) {
      out.push({error: err.message});
    }
  }
  return out;
}"""


def _evaluate_on_served_page(browser, scene, script: str, arg):
    """Run ``script`` (a JS function of ``arg``) on a page of the viewer's server, so the page's own modules load
    from the same origin."""
    with _server([prepare_scene(scene)]) as server:
        page = browser.new_page()
        try:
            page.goto(server.url + "style.css")
            return page.evaluate(script, arg)
        finally:
            page.close()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_browser_image_decoding_returns_the_stored_8_bit_values_exactly(browser, playbot_files):
    """Random planes (RGBA with fully transparent texels that still carry RGB, RGB, grey), lossless WebP and PNG:
    the page gets back exactly what Pillow decodes (no colour management, no premultiplied alpha)."""
    from sog.codec.image import decode_image, encode_image

    rng = np.random.default_rng(0)
    cases, expected = [], []
    for channels in (4, 3, 1):
        for codec in ("webp", "png"):
            img = rng.integers(0, 256, (37, 53, channels), dtype=np.uint8)
            if channels == 4:
                img[::3, :, 3] = 0  # transparent texels: their colour must survive
            data = encode_image(img, codec, 4)
            cases.append({"data": _b64(data), "name": f"plane.{codec}", "channels": channels})
            expected.append(decode_image(data, "plane", channels))
    got = _evaluate_on_served_page(browser, playbot_files["d"], PLANES_JS, cases)
    for case, want, have in zip(cases, expected, got):
        array = np.frombuffer(base64.b64decode(have["data"]), np.uint8).reshape(have["height"], have["width"], -1)
        assert np.array_equal(array, want), case["name"] + f" {case['channels']} channels"


def test_browser_zip_reader_reads_stored_and_deflated_entries_and_refuses_bad_crcs(browser, playbot_files):
    rng = np.random.default_rng(1)
    cases, expected = [], []
    for i in range(12):
        buf = io.BytesIO()
        files = {}
        with zipfile.ZipFile(buf, "w") as zf:
            for j in range(int(rng.integers(1, 5))):
                name = ("dir/" if j % 2 else "") + f"f{i}_{j}.bin"
                data = bytes(rng.integers(0, 4 if j % 3 else 256, int(rng.integers(0, 3000)), dtype=np.uint8))
                zf.writestr(zipfile.ZipInfo(name), data,
                            compress_type=zipfile.ZIP_DEFLATED if (i + j) % 2 else zipfile.ZIP_STORED)
                files[name.rsplit("/", 1)[-1]] = data
        cases.append(_b64(buf.getvalue()))
        expected.append(files)
    good = bytearray(base64.b64decode(cases[0]))
    with zipfile.ZipFile(io.BytesIO(bytes(good))) as zf:
        info = max(zf.infolist(), key=lambda x: x.compress_size)
    good[info.header_offset + 30 + len(info.filename) + 1] ^= 0x55  # one byte of the entry's data
    cases.append(_b64(bytes(good)))
    got = _evaluate_on_served_page(browser, playbot_files["d"], ZIP_JS, cases)
    for want, have in zip(expected, got):
        assert {k: base64.b64decode(v) for k, v in have.items()} == want
    assert got[-1]["error"].startswith("corrupt .sog zip (")
