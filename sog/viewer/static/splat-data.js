// Decoded float attributes (sog-decoder.js scenes) as a PlayCanvas GSplatData: the engine's PLY-like
// element/property layout (x y z, f_dc_*, opacity, scale_*, rot_0..3 = w x y z, f_rest_* channel-major),
// from which `new GSplatResource(device, data)` builds the GPU resource.

function column(src, width, j, n) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = src[i * width + j];
  return out;
}

export function toGSplatData(pc, scene) {
  const n = scene.count, k = scene.K;
  const properties = [];
  const add = (name, storage) => properties.push({ type: 'float', name, storage, byteSize: 4 });
  ['x', 'y', 'z'].forEach((name, j) => add(name, column(scene.means, 3, j, n)));
  [0, 1, 2].forEach((j) => add(`f_dc_${j}`, column(scene.sh0, 3, j, n)));
  add('opacity', scene.opacities.slice(0, n));
  [0, 1, 2].forEach((j) => add(`scale_${j}`, column(scene.scales, 3, j, n)));
  [0, 1, 2, 3].forEach((j) => add(`rot_${j}`, column(scene.quats, 4, j, n)));
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < k; i++) add(`f_rest_${c * k + i}`, column(scene.shN, 3 * k, i * 3 + c, n));
  }
  return new pc.GSplatData([{ name: 'vertex', count: n, properties }]);
}

/** Robust centre and radius of the scene (5th to 95th percentile box of a sample of the positions). */
export function sceneBounds(scene) {
  const n = scene.count, step = Math.max(1, Math.floor(n / 50000));
  const axes = [[], [], []];
  for (let i = 0; i < n; i += step) for (let a = 0; a < 3; a++) axes[a].push(scene.means[3 * i + a]);
  const lo = [], hi = [];
  for (const values of axes) {
    values.sort((x, y) => x - y);
    lo.push(values[Math.floor(0.05 * (values.length - 1))]);
    hi.push(values[Math.floor(0.95 * (values.length - 1))]);
  }
  const centre = lo.map((v, a) => (v + hi[a]) / 2);
  const radius = Math.max(1e-6, Math.hypot(hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2]) / 2);
  return { centre, radius };
}
