// The sog viewer page: one or two scenes, decoded in the browser (sog-decoder.js), rendered by the PlayCanvas
// engine from one shared camera (controls.js); with two scenes the PSNR of the current view between them.
//
// The page's configuration is the JSON in <script id="sog-config">: {scenes: [{name, url, count, sh_degree,
// bytes, bits_per_gaussian, ...}], up: [x, y, z], size: [w, h] or null}. `?size=WxH` fixes the canvases' pixel
// size. `window.sogViewer` is the page's state for scripts and tests: state ('loading' | 'ready' | 'error'),
// error, timings, setPose(), frame(), psnr(), png().

import { decodeScene, SceneError } from './sog-decoder.js';
import { toGSplatData, sceneBounds } from './splat-data.js';
import { CameraRig } from './controls.js';

const config = JSON.parse(document.getElementById('sog-config').textContent);
const params = new URLSearchParams(location.search);
const fixedSize = params.get('size') ? params.get('size').split('x').map(Number) : config.size || null;

const api = {
  state: 'loading', error: null, timings: [], scenes: [], views: [], version: 0, lastPsnr: null,
};
window.sogViewer = api;

function fmtBytes(b) {
  if (b >= 1e6) return `${(b / 1e6).toFixed(2)} MB`;
  if (b >= 1e3) return `${(b / 1e3).toFixed(1)} KB`;
  return `${b} B`;
}

function showError(message) {
  api.state = 'error';
  api.error = message;
  const box = document.getElementById('error');
  box.textContent = `sog: error: ${message}`;
  box.hidden = false;
  console.error(`sog: error: ${message}`);
}

/** Fetch `url` with a progress callback (0..1 of the bytes). */
async function fetchBytes(url, expected, onProgress) {
  const response = await fetch(url);
  if (!response.ok) throw new SceneError(`${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get('content-length')) || expected || 0;
  if (!response.body || !total) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const out = new Uint8Array(total);
  let received = 0;
  const chunks = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (received + value.length <= total) out.set(value, received);
    else chunks.push(value);
    received += value.length;
    onProgress(Math.min(1, received / total));
  }
  if (received === total) return out;
  const all = new Uint8Array(received);  // the length header was wrong: join what came
  all.set(out.subarray(0, Math.min(total, received)));
  let offset = Math.min(total, received);
  for (const c of chunks) { all.set(c, offset); offset += c.length; }
  return all.subarray(0, received);
}

function makeView(info, index) {
  const el = document.createElement('section');
  el.className = 'view' + (fixedSize ? ' fixed' : '');
  const canvas = document.createElement('canvas');
  canvas.id = `canvas${index}`;
  if (fixedSize) { canvas.width = fixedSize[0]; canvas.height = fixedSize[1]; }
  const label = document.createElement('div');
  label.className = 'info';
  label.textContent = info.name;
  const progress = document.createElement('div');
  progress.className = 'progress';
  progress.innerHTML = '<div></div><span>loading</span>';
  el.append(canvas, label, progress);
  document.getElementById('views').append(el);
  const setProgress = (fraction, text) => {
    progress.firstChild.style.width = `${(100 * fraction).toFixed(1)}%`;
    progress.lastChild.textContent = text;
  };
  return { el, canvas, label, progress, setProgress, info, index, readyVersion: -1, pendingReady: -1 };
}

async function loadScene(view) {
  const { info } = view;
  const t = {};
  const bytes = await fetchBytes(info.url, info.transfer_bytes,
    (f) => view.setProgress(0.7 * f, `loading ${fmtBytes(info.transfer_bytes || 0)}: ${(100 * f).toFixed(0)}%`));
  t.fetched = performance.now();
  let planes = 0;
  view.setProgress(0.7, 'decoding');
  const scene = await decodeScene(bytes, (stage) => {
    planes += 1;
    view.setProgress(Math.min(0.95, 0.7 + 0.025 * planes), `decoding ${stage}`);
  });
  t.decoded = performance.now();
  view.setProgress(0.95, 'uploading');
  return { scene, t };
}

function createApp(pc, view) {
  const app = new pc.Application(view.canvas, {
    graphicsDeviceOptions: { antialias: false, preserveDrawingBuffer: true, alpha: false, powerPreference: 'high-performance' },
  });
  app.graphicsDevice.maxPixelRatio = fixedSize ? 1 : Math.min(window.devicePixelRatio || 1, 2);
  app.setCanvasFillMode(pc.FILLMODE_NONE);
  app.setCanvasResolution(pc.RESOLUTION_FIXED, view.canvas.width || 300, view.canvas.height || 150);
  app.autoRender = false;
  // draw every Gaussian, as 3DGS does (the engine's default skips those under 2 px on screen, which turns a small
  // change in a tiny Gaussian into a pop)
  if (app.scene.gsplat && params.get('minpx') !== 'engine') app.scene.gsplat.minPixelSize = 0;
  const camera = new pc.Entity('camera');
  camera.addComponent('camera', {
    clearColor: new pc.Color(0, 0, 0, 1), fov: 50, nearClip: 0.01, farClip: 1000,
    toneMapping: pc.TONEMAP_LINEAR,
  });
  app.root.addChild(camera);
  // 'frame:ready' says the world state is current, not that the depth sort for a camera that just moved has come
  // back from the engine's sort worker: a frame counts as settled only when no sort is asked for, running or
  // waiting to be applied (the unified manager's CPU sorter; the GPU sort has nothing pending)
  const sorting = () => {
    let busy = false;
    app.renderer.gsplatDirector?.camerasMap?.forEach((cameraData) => cameraData.layersMap?.forEach((layerData) => {
      const manager = layerData.gsplatManager, sorter = manager?.cpuSorter;
      if (manager && (manager.sortNeeded || (sorter && (sorter.jobsInFlight > 0 || sorter.pendingSorted)))) busy = true;
    }));
    return busy;
  };
  app.systems.gsplat.on('frame:ready', (cam, layer, ready, loading) => {
    if (ready && !loading && !sorting()) view.pendingReady = view.renderVersion;
    else app.renderNextFrame = true;
  });
  app.systems.gsplat.on('frame:request', () => { app.renderNextFrame = true; });
  app.on('frameend', () => {
    if (view.pendingReady >= 0) {
      view.readyVersion = view.pendingReady;
      view.pendingReady = -1;
      if (view.onReady) view.onReady();
    }
  });
  app.start();
  view.app = app;
  view.camera = camera;
  return app;
}

/** Fit the canvases to their boxes, all the same size (the PSNR compares them pixel for pixel). */
function resize(views) {
  if (fixedSize) return;
  const ready = views.filter((v) => v.app);
  if (!ready.length) return;
  const dpr = ready[0].app.graphicsDevice.maxPixelRatio;
  const w = Math.max(1, Math.floor(Math.min(...ready.map((v) => v.el.clientWidth)) * dpr));
  const h = Math.max(1, Math.floor(Math.min(...ready.map((v) => v.el.clientHeight)) * dpr));
  for (const view of ready) {
    if (view.canvas.width !== w || view.canvas.height !== h) view.app.graphicsDevice.resizeCanvas(w, h);
  }
}

function applyPose(pc, views, rig) {
  const p = rig.pose();
  const m = new pc.Mat4();
  const d = m.data;
  d.set([...p.right, 0, ...p.camUp, 0, ...p.back, 0, ...p.position, 1]);
  const q = new pc.Quat().setFromMat4(m);
  api.version += 1;
  for (const view of views) {
    view.camera.setPosition(p.position[0], p.position[1], p.position[2]);
    view.camera.setRotation(q);
    view.camera.camera.fov = p.fov;
    view.camera.camera.nearClip = Math.max(rig.radius * 1e-3, 1e-4);
    view.camera.camera.farClip = rig.radius * 200 + rig.distance * 4;
    view.renderVersion = api.version;
    view.app.renderNextFrame = true;
  }
}

/** RGBA pixels of a view's canvas, as drawn (top row first). */
function pixels(view) {
  const { width, height } = view.canvas;
  const c = new OffscreenCanvas(width, height);
  const ctx = c.getContext('2d', { willReadFrequently: true });
  ctx.drawImage(view.canvas, 0, 0);
  return ctx.getImageData(0, 0, width, height).data;
}

/** PSNR (dB, 8-bit RGB, peak 255) between two views' current pictures; Infinity when identical. */
function psnrOf(a, b) {
  const pa = pixels(a), pb = pixels(b);
  if (pa.length !== pb.length) return NaN;
  let sum = 0;
  for (let i = 0; i < pa.length; i += 4) {
    for (let c = 0; c < 3; c++) { const d = pa[i + c] - pb[i + c]; sum += d * d; }
  }
  const mse = sum / ((pa.length / 4) * 3);
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

async function main() {
  const scenes = config.scenes || [];
  const views = scenes.map(makeView);
  api.views = views;
  document.title = `sog view: ${scenes.map((s) => s.name).join(' | ')}`;
  if (config.error) { showError(config.error); return; }
  // the engine and the scenes load at the same time
  const engine = import('playcanvas').then((m) => ({ m }), (err) => ({ err }));
  const scenesLoaded = Promise.all(views.map(loadScene));
  scenesLoaded.catch(() => {});
  const { m: pc, err: engineError } = await engine;
  if (engineError) {
    showError(`cannot load the PlayCanvas engine from ${config.engine_url} (${engineError.message || engineError})`);
    return;
  }
  let loaded;
  try {
    loaded = await scenesLoaded;
  } catch (err) {
    showError(err instanceof SceneError ? err.message : `cannot read the scene (${err.message || err})`);
    for (const v of views) v.progress.hidden = true;
    return;
  }
  const bounds = sceneBounds(loaded[0].scene);
  const rig = new CameraRig({ up: config.up || [0, -1, 0], centre: bounds.centre, radius: bounds.radius });
  api.rig = rig;
  for (let i = 0; i < views.length; i++) {
    const view = views[i];
    const { scene, t } = loaded[i];
    try {
      const app = createApp(pc, view);
      resize(views);
      const data = toGSplatData(pc, scene);
      const resource = new pc.GSplatResource(app.graphicsDevice, data);
      const entity = new pc.Entity('scene');
      entity.addComponent('gsplat', {});
      entity.gsplat.resource = resource;
      app.root.addChild(entity);
      t.uploaded = performance.now();
    } catch (err) {
      showError(`cannot render ${view.info.name} (${err.message || err})`);
      return;
    }
    const info = view.info;
    const bits = (8 * info.bytes) / scene.count;
    view.label.textContent = `${info.name}\n${scene.count.toLocaleString('en')} Gaussians · SH degree ${scene.shDegree}\n`
      + `${fmtBytes(info.bytes)} · ${bits.toFixed(2)} bits/Gaussian`;
    api.scenes.push({ name: info.name, count: scene.count, shDegree: scene.shDegree, format: scene.format,
      bytes: info.bytes, bitsPerGaussian: bits });
    api.timings.push(t);
    view.decoded = scene;
  }
  const psnrBox = document.getElementById('psnr');
  const updatePsnr = () => {
    if (views.length !== 2 || views.some((v) => v.readyVersion !== api.version)) return;
    api.lastPsnr = psnrOf(views[0], views[1]);
    psnrBox.textContent = `PSNR of this view: ${Number.isFinite(api.lastPsnr) ? api.lastPsnr.toFixed(2) : '∞'} dB`;
  };
  let waiters = [];
  for (const view of views) {
    view.onReady = () => {
      if (view.readyVersion === api.version) {
        if (view.t && view.t.firstFrame === undefined) view.t.firstFrame = performance.now();
        if (views.every((v) => v.readyVersion === api.version)) {
          if (api.state === 'loading') api.state = 'ready';
          for (const v of views) v.progress.hidden = true;
          updatePsnr();
          const w = waiters; waiters = [];
          w.forEach((fn) => fn());
        }
      }
    };
  }
  views.forEach((v, i) => { v.t = api.timings[i]; });
  rig.onChange(() => { if (views.length === 2) psnrBox.textContent = 'PSNR of this view: …'; applyPose(pc, views, rig); });
  rig.attach(document.getElementById('views'));
  document.getElementById('reset').addEventListener('click', () => rig.reset());
  const onResize = () => { resize(views); applyPose(pc, views, rig); };
  if (typeof ResizeObserver !== 'undefined') new ResizeObserver(onResize).observe(document.getElementById('views'));
  else window.addEventListener('resize', onResize);
  let last = performance.now();
  const loop = (now) => { rig.tick(Math.min(0.1, (now - last) / 1000)); last = now; requestAnimationFrame(loop); };
  requestAnimationFrame(loop);
  applyPose(pc, views, rig);

  /** Resolves when every view shows a fully sorted frame of the current camera. */
  api.frame = () => new Promise((resolve) => {
    if (views.every((v) => v.readyVersion === api.version)) resolve();
    else waiters.push(resolve);
  });
  api.setPose = (pose) => { rig.setPose(pose); return api.frame(); };
  api.psnr = () => (views.length === 2 ? psnrOf(views[0], views[1]) : null);
  api.png = (i) => views[i].canvas.toDataURL('image/png');
  api.decoded = (i) => views[i].decoded;
}

main().catch((err) => showError(err.message || String(err)));
