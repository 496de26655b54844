// sog's second reference-renderer page: Spark (npm @sparkjsdev/spark, on three.js; both served from node_modules
// under /npm/, never committed) loads a scene with its own SplatMesh loader and renders it from cameras that Python
// sends (sog/render/spark.py). window.sogSpark.{init, load, render} are the only entry points; everything else is
// Spark's defaults except: no MSAA, device pixel ratio 1, black clear colour, no tone mapping, sRGB output (Spark
// then writes the splats' colours as they are), LoD off, updates driven here (autoUpdate off) so that each render
// waits for its own sort, and the SparkRenderer options that Python passes (blur amounts, extended splats).
import * as THREE from 'three';
import { SparkRenderer, SplatMesh } from '@sparkjsdev/spark';
import { collectErrors, readPixels, withTimeout } from '/common.js';

const state = { renderer: null, scene: null, camera: null, spark: null, mesh: null, width: 0, height: 0, extSplats: false, errors: collectErrors() };

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function init(opts) {
    const canvas = document.getElementById('canvas');
    state.width = opts.width;
    state.height = opts.height;
    const renderer = new THREE.WebGLRenderer({ canvas, antialias: false, alpha: false, preserveDrawingBuffer: true });
    renderer.setPixelRatio(1);
    renderer.setSize(opts.width, opts.height, false);
    renderer.setClearColor(0x000000, 1);
    renderer.toneMapping = THREE.NoToneMapping;
    renderer.outputColorSpace = THREE.SRGBColorSpace;
    const scene = new THREE.Scene();
    const camera = new THREE.PerspectiveCamera(50, opts.width / opts.height, opts.near, opts.far);
    const sparkOptions = { renderer, autoUpdate: false, enableLod: false };
    for (const [key, value] of Object.entries(opts.spark || {})) if (value !== null && value !== undefined) sparkOptions[key] = value;
    const spark = new SparkRenderer(sparkOptions);
    scene.add(spark);
    Object.assign(state, { renderer, scene, camera, spark, extSplats: !!opts.extSplats });
    const gl = renderer.getContext();
    return { renderer: gl.getParameter(gl.RENDERER), version: gl.getParameter(gl.VERSION), three: THREE.REVISION };
}

async function load(url, opts) {
    if (state.mesh) {                       // one scene at a time: the previous one goes first
        state.scene.remove(state.mesh);
        state.mesh.dispose();
        state.mesh = null;
    }
    const mesh = new SplatMesh({ url, lod: false, extSplats: state.extSplats });
    await withTimeout(mesh.initialized, opts.timeoutMs, `loading ${url}`);
    state.scene.add(mesh);
    state.mesh = mesh;
    const splats = mesh.packedSplats ?? mesh.extSplats ?? mesh.splats;
    return { numSplats: splats?.numSplats ?? (splats?.getNumSplats ? splats.getNumSplats() : null),
             shDegree: splats?.getNumSh ? splats.getNumSh() : null };
}

// view: {c2w: 16 numbers column-major (three.js camera-to-world: -Z forward, +Y up), proj: 16 numbers
// column-major (OpenGL projection), near, far, timeoutMs}
async function render(view) {
    const { renderer, scene, camera, spark } = state;
    const m = new THREE.Matrix4().fromArray(view.c2w);
    m.decompose(camera.position, camera.quaternion, camera.scale);
    camera.updateMatrixWorld(true);
    camera.projectionMatrix.fromArray(view.proj);
    camera.projectionMatrixInverse.copy(camera.projectionMatrix).invert();
    const deadline = performance.now() + view.timeoutMs;
    // regenerate the splats for this camera and sort them; then wait until no sort is running or pending and the
    // last sort was for this camera's position
    await withTimeout(spark.update({ scene, camera }), view.timeoutMs, 'the splat update and sort');
    const eye = camera.getWorldPosition(new THREE.Vector3());
    let sorted = false;
    while (performance.now() < deadline) {
        if (!spark.sorting && !spark.sortDirty && spark.sortedCenter.distanceTo(eye) < 1e-3) { sorted = true; break; }
        await sleep(5);
    }
    renderer.setRenderTarget(null);
    renderer.render(scene, camera);
    const pixels = readPixels(renderer.getContext(), state.width, state.height, false);
    return { ...pixels, sorted, activeSplats: spark.activeSplats };
}

window.sogSpark = { init, load, render, errors: () => state.errors };
window.sogSparkReady = true;
