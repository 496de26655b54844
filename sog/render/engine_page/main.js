// sog's reference-renderer page: the PlayCanvas engine (served as /playcanvas.mjs from npm, never committed)
// loads a scene with its own gsplat loader and renders it from cameras that Python sends (sog/render/engine.py).
// window.sogEngine.{init, load, render} are the only entry points; everything else is the engine's defaults
// except: no MSAA, device pixel ratio 1, black clear colour, tone mapping NONE, gamma SRGB (the shader then writes
// the splats' colours as they are, see engine.py), and optionally a float render target.
import * as pc from '/playcanvas.mjs';
import { collectErrors, readPixels, withTimeout } from '/common.js';

const state = { app: null, camera: null, splat: null, asset: null, target: null, width: 0, height: 0, sorted: 0, requested: 0, counting: false, loads: 0, streamed: false, errors: collectErrors() };

function frames(n) {
    // resolve after the app has finished n more frames
    return new Promise((resolve) => {
        let left = n;
        const tick = () => {
            left -= 1;
            if (left <= 0) { state.app.off('frameend', tick); resolve(); }
        };
        state.app.on('frameend', tick);
    });
}

async function init(opts) {
    const canvas = document.getElementById('canvas');
    state.width = opts.width;
    state.height = opts.height;
    canvas.width = opts.width;
    canvas.height = opts.height;
    canvas.style.width = `${opts.width}px`;
    canvas.style.height = `${opts.height}px`;
    const app = new pc.Application(canvas, {
        graphicsDeviceOptions: { antialias: false, preserveDrawingBuffer: true, alpha: false, deviceTypes: ['webgl2'] }
    });
    app.graphicsDevice.maxPixelRatio = 1;
    app.setCanvasFillMode(pc.FILLMODE_NONE);
    app.setCanvasResolution(pc.RESOLUTION_FIXED, opts.width, opts.height);
    app.scene.on('gsplat:sorted', () => { state.sorted += 1; });
    const camera = new pc.Entity('camera');
    camera.addComponent('camera', {
        clearColor: new pc.Color(0, 0, 0, 1),
        toneMapping: pc.TONEMAP_NONE,
        gammaCorrection: pc.GAMMA_SRGB,
        nearClip: opts.near,
        farClip: opts.far,
    });
    app.root.addChild(camera);
    if (opts.float) {
        const texture = new pc.Texture(app.graphicsDevice, {
            name: 'sog-float-target', width: opts.width, height: opts.height, format: pc.PIXELFORMAT_RGBA32F,
            mipmaps: false, minFilter: pc.FILTER_NEAREST, magFilter: pc.FILTER_NEAREST,
            addressU: pc.ADDRESS_CLAMP_TO_EDGE, addressV: pc.ADDRESS_CLAMP_TO_EDGE,
        });
        state.target = new pc.RenderTarget({ colorBuffer: texture, depth: true });
        camera.camera.renderTarget = state.target;
    }
    state.app = app;
    state.camera = camera;
    app.start();
    await withTimeout(frames(2), opts.timeoutMs, 'first frames');
    const gl = app.graphicsDevice.gl;
    return { renderer: gl.getParameter(gl.RENDERER), version: gl.getParameter(gl.VERSION), engine: pc.version };
}

async function load(url, opts) {
    // url: a file the gsplat asset reads (PLY, SOG, meta.json, lod-meta.json) or a .glb (a container asset whose
    // meshes carry KHR_gaussian_splatting primitives: its entity hierarchy, node transforms included)
    const app = state.app;
    if (state.splat) {                      // one scene at a time: the previous one goes first
        state.splat.destroy();
        state.splat = null;
        state.asset.unload();
        app.assets.remove(state.asset);
        state.asset = null;
        await withTimeout(frames(1), opts.timeoutMs, 'a frame after unloading');
    }
    const container = url.toLowerCase().endsWith('.glb');
    const asset = new pc.Asset(`scene-${++state.loads}`, container ? 'container' : 'gsplat', { url });
    app.assets.add(asset);
    const loaded = new Promise((resolve, reject) => {
        asset.ready(() => resolve());
        asset.once('error', (err) => reject(new Error(`engine could not load ${url}: ${err}`)));
    });
    app.assets.load(asset);
    await withTimeout(loaded, opts.timeoutMs, `loading ${url}`);
    let entity, component;
    if (container) {
        entity = asset.resource.instantiateRenderEntity();
        component = entity.findComponents('gsplat')[0];
        if (!component) throw new Error(`engine found no KHR_gaussian_splatting primitive in ${url}`);
        component.unified = opts.unified;
    } else {
        entity = new pc.Entity('splat');
        component = entity.addComponent('gsplat', { asset, unified: opts.unified });
    }
    state.sorted = 0;
    state.requested = 0;
    state.counting = false;
    app.root.addChild(entity);
    state.splat = entity;
    state.asset = asset;
    const sorter = component.instance?.sorter;
    if (!opts.unified && sorter) {
        // count the camera changes sent to the sort worker (each one is answered by one sort)
        const send = sorter.setCamera.bind(sorter);
        sorter.setCamera = (pos, dir) => { state.requested += 1; send(pos, dir); };
        state.counting = true;
    }
    if (opts.minPixelSize !== null && opts.minPixelSize !== undefined) {
        // the engine culls splats whose on-screen quad is smaller than this many pixels (its default: 2)
        if (opts.unified) app.scene.gsplat.minPixelSize = opts.minPixelSize;
        else component.material.setParameter('minPixelSize', opts.minPixelSize);
    }
    await withTimeout(frames(2), opts.timeoutMs, 'frames after load');
    const res = container ? app.assets.get(component.asset)?.resource : asset.resource;
    state.streamed = !!res?.octree;          // a lod-meta.json: its files stream in as the camera needs them
    return { numSplats: res?.numSplats ?? res?.gsplatData?.numSplats ?? null, shBands: res?.shBands ?? null };
}

function streaming() {
    // the unified renderer's octree (lod-meta.json) instances, all cameras: how many, and the files they are
    // still loading; loading: none yet, or some files pending
    let instances = 0, pending = 0;
    state.app.renderer.gsplatDirector?.camerasMap?.forEach((cameraData) => {
        cameraData.layersMap?.forEach((layerData) => {
            layerData.gsplatManager?.world?._octreeInstances?.forEach((inst) => { instances += 1; pending += inst.pendingLoadCount; });
        });
    });
    return { instances, pending, loading: instances === 0 || pending > 0 };
}

// view: {c2w: 16 numbers column-major (PlayCanvas camera-to-world), proj: 16 numbers column-major (OpenGL
// projection), timeoutMs, settleFrames}
async function render(view) {
    const { app, camera } = state;
    const m = new pc.Mat4();
    m.set(view.c2w);
    const pos = new pc.Vec3();
    m.getTranslation(pos);
    const rot = new pc.Quat().setFromMat4(m);
    camera.setPosition(pos);
    camera.setRotation(rot);
    const proj = new pc.Mat4();
    proj.set(view.proj);
    camera.camera.calculateProjection = (mat) => { mat.copy(proj); };
    // The sort runs in a worker. Per-asset renderer: every camera change the instance sends is counted, so wait
    // until the worker has answered all of them. Unified renderer: wait for a sort since the camera moved and
    // then settleFrames frames without another. Then settleFrames frames for the upload.
    let before = state.sorted;
    const deadline = performance.now() + view.timeoutMs;
    let sortedSeen = false;
    let seen = state.sorted;
    let quiet = 0;
    while (performance.now() < deadline) {
        await withTimeout(frames(1), view.timeoutMs, 'a frame');
        if (state.counting) {
            if (state.sorted >= state.requested && state.requested > 0) { sortedSeen = true; break; }
            continue;
        }
        if (state.streamed && streaming().loading) {
            // a streamed (lod-meta.json) scene: no octree instance yet, or files still loading; the sort that
            // counts is one after they are all in
            sortedSeen = false;
            before = seen = state.sorted;
            quiet = 0;
            continue;
        }
        if (state.sorted !== seen) { seen = state.sorted; quiet = 0; } else { quiet += 1; }
        if (state.sorted > before) sortedSeen = true;
        if (sortedSeen && quiet >= view.settleFrames) break;
    }
    await withTimeout(frames(view.settleFrames), view.timeoutMs, 'settle frames');
    // read back synchronously (the engine's async texture read polls a fence that SwiftShader under load may
    // not signal for minutes); setFramebuffer keeps the engine's record of the bound framebuffer right
    const device = app.graphicsDevice;
    device.setFramebuffer(state.target ? state.target.impl._glFrameBuffer : null);
    const pixels = readPixels(device.gl, state.width, state.height, !!state.target);
    return { ...pixels, sorted: sortedSeen, streamingPending: state.streamed ? streaming().pending : 0 };
}

function debug() {
    const inst = state.splat?.gsplat?.instance;
    return { count: inst?.sorter?.count ?? null, instancingCount: inst?.meshInstance?.instancingCount ?? null,
             numSplats: inst?.material?.getParameter('numSplats')?.data ?? null, sorted: state.sorted };
}
window.sogEngine = { init, load, render, debug, streaming, errors: () => state.errors };
window.sogEngineReady = true;
