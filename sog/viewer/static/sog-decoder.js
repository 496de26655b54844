// sog's browser decoder: a .sog zip (the native profile, layered or not, and PlayCanvas SOG v2) or sog's raw
// float file (what `sog view` serves for PLY, .spz, .splat and LOD inputs) to float attribute arrays.
// The .sog layouts it reads (SOG v2, native versions 1-5, layered version 3) are specified in docs/formats.md.
//
// It mirrors sog/codec/native.py `decode` and sog/codec/v2.py `decode` step by step, in float64 with
// float32 storage where Python stores float32, so the arrays equal `sog.load` of the same file within float32
// rounding. Image planes are decoded by the browser with colour management and premultiplied alpha off; planes
// whose alpha carries data are read back through WebGL (exact RGBA), the others through a 2D canvas.
//
// The result of `decodeScene` (a "scene"):
//   {count, shDegree, K, means (N*3), scales (N*3, log), quats (N*4, wxyz), opacities (N, logit),
//    sh0 (N*3), shN (N*K*3, coefficient-major per Gaussian like sog's (N, K, 3)), format, meta}
// All arrays are Float32Array.

export class SceneError extends Error {
  constructor(message) { super(message); this.name = 'SceneError'; }
}

const SH_REST_COUNT = { 0: 0, 1: 3, 2: 8, 3: 15 };
const GIBBS_MAX = Math.SQRT2 - 1;
const QUAT_KEEP = [[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]];
const NATIVE_READ_VERSIONS = [1, 2, 4, 5];
const NATIVE_LAYERED = 3;
export const RAW_MAGIC = 'SOGRAW01';

// ---------------------------------------------------------------------------------------------- zip reader

let crcTable = null;
function crc32(bytes) {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xFFFFFFFF;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xFF] ^ (crc >>> 8);
  return (crc ^ 0xFFFFFFFF) >>> 0;
}

async function inflateRaw(bytes) {
  if (typeof DecompressionStream === 'undefined') {
    throw new SceneError('this browser cannot inflate zip entries (no DecompressionStream)');
  }
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** The entries of a zip archive: Map(base name -> Uint8Array), CRC-checked. Stored and deflated entries. */
export async function readZip(buffer) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (view.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new SceneError('not a valid .sog zip (no end of central directory)');
  const entries = view.getUint16(eocd + 10, true);
  const cdSize = view.getUint32(eocd + 12, true);
  let p = view.getUint32(eocd + 16, true);
  if (p + cdSize > eocd) throw new SceneError('corrupt .sog zip (central directory out of range)');
  const out = new Map();
  const decoder = new TextDecoder();
  for (let e = 0; e < entries; e++) {
    if (p + 46 > bytes.length || view.getUint32(p, true) !== 0x02014b50) {
      throw new SceneError('corrupt .sog zip (bad central directory entry)');
    }
    const method = view.getUint16(p + 10, true);
    const crc = view.getUint32(p + 16, true);
    const csize = view.getUint32(p + 20, true);
    const usize = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true), extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    const local = view.getUint32(p + 42, true);
    const name = decoder.decode(bytes.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    if (name.endsWith('/')) continue;
    if (csize === 0xFFFFFFFF || usize === 0xFFFFFFFF || local === 0xFFFFFFFF) {
      throw new SceneError(`.sog zip entry ${name} needs ZIP64, which this reader does not read`);
    }
    if (local + 30 > bytes.length || view.getUint32(local, true) !== 0x04034b50) {
      throw new SceneError(`corrupt .sog zip (bad local header of ${name})`);
    }
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    if (start + csize > bytes.length) throw new SceneError(`corrupt .sog zip (${name} is truncated)`);
    const raw = bytes.subarray(start, start + csize);
    let data;
    if (method === 0) data = raw;
    else if (method === 8) {
      try { data = await inflateRaw(raw); } catch (err) {
        throw new SceneError(`corrupt .sog zip (cannot inflate ${name})`);
      }
    } else throw new SceneError(`.sog zip entry ${name} uses compression method ${method} (stored or deflate only)`);
    if (data.length !== usize || crc32(data) !== crc) throw new SceneError(`corrupt .sog zip (bad CRC in ${name})`);
    out.set(name.split('/').pop(), data);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------- image planes

let glReader = null;
function webglReader() {
  if (glReader) return glReader;
  const canvas = typeof OffscreenCanvas !== 'undefined' ? new OffscreenCanvas(1, 1) : document.createElement('canvas');
  const gl = canvas.getContext('webgl2', { premultipliedAlpha: false });
  if (!gl) return null;
  glReader = { gl, texture: gl.createTexture(), framebuffer: gl.createFramebuffer() };
  return glReader;
}

function readPixelsWebGL(bitmap, reader) {
  const { gl, texture, framebuffer } = reader;
  const max = gl.getParameter(gl.MAX_TEXTURE_SIZE);
  if (bitmap.width > max || bitmap.height > max) return null;
  gl.bindTexture(gl.TEXTURE_2D, texture);
  gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false);
  gl.pixelStorei(gl.UNPACK_COLORSPACE_CONVERSION_WEBGL, gl.NONE);
  gl.pixelStorei(gl.UNPACK_FLIP_Y_WEBGL, false);
  gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA8, gl.RGBA, gl.UNSIGNED_BYTE, bitmap);
  gl.bindFramebuffer(gl.FRAMEBUFFER, framebuffer);
  gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, texture, 0);
  if (gl.checkFramebufferStatus(gl.FRAMEBUFFER) !== gl.FRAMEBUFFER_COMPLETE) return null;
  const data = new Uint8Array(bitmap.width * bitmap.height * 4);
  gl.readPixels(0, 0, bitmap.width, bitmap.height, gl.RGBA, gl.UNSIGNED_BYTE, data);
  gl.bindFramebuffer(gl.FRAMEBUFFER, null);
  return data;
}

function readPixels2D(bitmap) {
  const canvas = typeof OffscreenCanvas !== 'undefined'
    ? new OffscreenCanvas(bitmap.width, bitmap.height)
    : Object.assign(document.createElement('canvas'), { width: bitmap.width, height: bitmap.height });
  const ctx = canvas.getContext('2d', { willReadFrequently: true, colorSpace: 'srgb' });
  ctx.drawImage(bitmap, 0, 0);
  return new Uint8Array(ctx.getImageData(0, 0, bitmap.width, bitmap.height).data.buffer);
}

function mimeOf(name) {
  const lower = name.toLowerCase();
  if (lower.endsWith('.webp')) return 'image/webp';
  if (lower.endsWith('.png')) return 'image/png';
  if (lower.endsWith('.jpg') || lower.endsWith('.jpeg')) return 'image/jpeg';
  return '';
}

/**
 * Decode an image plane to {width, height, data: Uint8Array (H*W*channels)} with the channel rules of Pillow's
 * convert(): 1 channel = ITU-R 601 luma (R=G=B=v gives v), 3 = RGB (alpha dropped), 4 = RGBA. Planes read with
 * 4 channels go through WebGL (their alpha is data; a 2D canvas would premultiply it), the rest through 2D.
 */
export async function decodeImage(bytes, name, channels) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes], { type: mimeOf(name) }),
      { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch (err) {
    throw new SceneError(`${name}: cannot decode image (${err.message || err})`);
  }
  let rgba = null;
  if (channels === 4) {
    const reader = webglReader();
    rgba = reader ? readPixelsWebGL(bitmap, reader) : null;
    if (!rgba) throw new SceneError(`${name}: needs WebGL 2 to read its alpha channel exactly`);
  } else {
    rgba = readPixels2D(bitmap);
  }
  const { width, height } = bitmap;
  bitmap.close();
  const n = width * height;
  if (channels === 4) return { width, height, data: rgba };
  const out = new Uint8Array(n * channels);
  if (channels === 3) {
    for (let i = 0; i < n; i++) {
      out[3 * i] = rgba[4 * i]; out[3 * i + 1] = rgba[4 * i + 1]; out[3 * i + 2] = rgba[4 * i + 2];
    }
  } else {
    for (let i = 0; i < n; i++) {
      out[i] = (rgba[4 * i] * 19595 + rgba[4 * i + 1] * 38470 + rgba[4 * i + 2] * 7471 + 0x8000) >>> 16;
    }
  }
  return { width, height, data: out };
}

// ---------------------------------------------------------------------------------------------- helpers

function codebookValues(stored) {
  if (stored && typeof stored === 'object' && !Array.isArray(stored)) {
    const steps = stored.steps, first = Number(stored.first), unit = Number(stored.unit);
    if (!Array.isArray(steps)) throw new SceneError('malformed sog meta.json (codebook without steps)');
    const out = new Float32Array(steps.length);
    let sum = 0;
    for (let i = 0; i < steps.length; i++) { sum += steps[i]; out[i] = first + unit * sum; }
    return out;
  }
  if (!Array.isArray(stored)) throw new SceneError('malformed sog meta.json (codebook is not a list)');
  return Float32Array.from(stored, Number);
}

const invLog = (y) => Math.sign(y) * Math.expm1(Math.abs(y));
const logit = (alpha) => Math.log(alpha / (1 - alpha));
const clip = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

function levelsOk(cond, message) { if (!cond) throw new SceneError(message); }

/** Smallest-three quaternion texels (RGBA, alpha = 252 + dropped index) -> wxyz, as sog/codec/v2.py `unpack_quats`. */
function unpackQuats(tex, n, out) {
  const q = [0, 0, 0, 0];
  for (let i = 0; i < n; i++) {
    const tag = tex[4 * i + 3];
    if (tag < 252) { out[4 * i] = 1; out[4 * i + 1] = 0; out[4 * i + 2] = 0; out[4 * i + 3] = 0; continue; }
    const largest = tag - 252;
    const keep = QUAT_KEEP[largest];
    let sum = 0;
    q[0] = q[1] = q[2] = q[3] = 0;
    for (let j = 0; j < 3; j++) {
      const v = (tex[4 * i + j] / 255 * 2 - 1) / Math.SQRT2;
      q[keep[j]] = v;
      sum += v * v;
    }
    q[largest] = Math.sqrt(Math.max(1 - sum, 0));
    out[4 * i] = q[0]; out[4 * i + 1] = q[1]; out[4 * i + 2] = q[2]; out[4 * i + 3] = q[3];
  }
}

/** Gibbs codes (RGB) -> unit wxyz, as rotation.unpack_gibbs. */
function unpackGibbs(tex, n, levels, out) {
  const top = levels - 1;
  for (let i = 0; i < n; i++) {
    const gx = (Math.min(tex[3 * i], top) / top * 2 - 1) * GIBBS_MAX;
    const gy = (Math.min(tex[3 * i + 1], top) / top * 2 - 1) * GIBBS_MAX;
    const gz = (Math.min(tex[3 * i + 2], top) / top * 2 - 1) * GIBBS_MAX;
    const norm = Math.sqrt(1 + gx * gx + gy * gy + gz * gz);
    out[4 * i] = 1 / norm; out[4 * i + 1] = gx / norm; out[4 * i + 2] = gy / norm; out[4 * i + 3] = gz / norm;
  }
}

function emptyScene(n, k) {
  return {
    count: n, K: k, shDegree: Object.keys(SH_REST_COUNT).find((d) => SH_REST_COUNT[d] === k) | 0,
    means: new Float32Array(n * 3), scales: new Float32Array(n * 3), quats: new Float32Array(n * 4),
    opacities: new Float32Array(n), sh0: new Float32Array(n * 3), shN: new Float32Array(n * k * 3),
  };
}

// ---------------------------------------------------------------------------------------------- native profile

/** The native SH palette: Float32Array (c*K*3) of entry e, coefficient i, channel ch at (e*K + i)*3 + ch.
 *  Layout "rgb" (version 5): coefficient i of entry e is the RGB texel (e / pw, (e % pw)*K + i); before it, one grey
 *  row of pw entries per coefficient and colour. */
async function readNativePalette(shn, names, read) {
  const k = SH_REST_COUNT[Number(shn.bands)];
  const c = Number(shn.count);
  if (k === undefined || !(c > 0)) throw new SceneError('malformed sog meta.json (shN bands or count)');
  const cb = codebookValues(shn.codebook);
  const img = await decodeImage(read(names.shN_centroids), names.shN_centroids, 3);
  const rgb = shn.layout === 'rgb';
  const pw = rgb ? Math.floor(img.width / k) : img.width;
  const rows = rgb ? img.height : Math.floor(img.height / (3 * k));
  if ((rgb && img.width % k) || pw % 64 || rows * pw < c) {
    throw new SceneError(`shN_centroids image is ${img.width}x${img.height}, too small for ${c} entries`);
  }
  const out = new Float32Array(c * k * 3);
  for (let e = 0; e < c; e++) {
    const row = Math.floor(e / pw), col = e % pw;
    for (let ch = 0; ch < 3; ch++) {
      for (let i = 0; i < k; i++) {
        const at = rgb ? (row * img.width + col * k + i) * 3 + ch : ((row * 3 * k + ch * k + i) * pw + col) * 3;
        const label = img.data[at];
        if (label >= cb.length) throw new SceneError(`shN_centroids refers to codebook entry ${label} of ${cb.length}`);
        out[(e * k + i) * 3 + ch] = cb[label];
      }
    }
  }
  return { values: out, count: c, K: k };
}

async function decodeNativeLayer(meta, read, palette, progress) {
  const version = meta.version;
  if (!NATIVE_READ_VERSIONS.includes(version)) {
    throw new SceneError(`unsupported native sog version ${JSON.stringify(version)} (this page reads 1, 2, 4, 5 and 3)`);
  }
  const n = Number(meta.count);
  if (!(n > 0) || !Number.isInteger(n)) throw new SceneError('sog file holds zero Gaussians');
  const names = meta.files || {};

  async function plane(name, channels) {
    if (!(name in names)) throw new SceneError(`sog meta.json lists no ${name} plane`);
    const img = await decodeImage(read(names[name]), names[name], channels);
    if (img.width * img.height < n) {
      throw new SceneError(`${name}: ${img.width}x${img.height} image is too small for ${n} Gaussians`);
    }
    progress(name);
    return img.data;
  }

  async function joinedPlane(high, low, bits) {  // (N*3) integers of `bits` bits
    const hi = await plane(high, 3);
    const values = new Uint32Array(n * 3);
    const shift = bits - 8;
    for (let i = 0; i < n * 3; i++) values[i] = hi[i] * 2 ** shift;
    if (bits > 8) {
      const lo = await plane(low, 3);
      for (let i = 0; i < n * 3; i++) values[i] += lo[i];
    }
    return values;
  }

  const shn = meta.shN;
  const bands = shn ? Number(shn.bands) : 0;
  const k = SH_REST_COUNT[bands];
  if (k === undefined) throw new SceneError(`unsupported shN bands ${bands}`);
  const s = emptyScene(n, k);

  const bits = Number(meta.means.bits);
  const levels = Number(meta.means.levels ?? 2 ** bits);
  levelsOk(levels >= 2 && levels <= 2 ** bits, `sog meta.json: ${levels} position levels do not fit ${bits}-bit planes`);
  const q = await joinedPlane('means_u', 'means_l', bits);
  const mins = meta.means.mins.map(Number), maxs = meta.means.maxs.map(Number);
  const transform = meta.means.transform ?? 'log';
  if (transform !== 'log' && transform !== 'linear') {
    throw new SceneError(`sog meta.json: unknown position transform ${JSON.stringify(transform)}`);
  }
  for (let i = 0; i < n; i++) {
    for (let a = 0; a < 3; a++) {
      const v = mins[a] + (maxs[a] - mins[a]) * (q[3 * i + a] / (levels - 1));
      s.means[3 * i + a] = transform === 'log' ? invLog(v) : v;
    }
  }

  if (version === 1) {
    unpackQuats(await plane('quats', 4), n, s.quats);
  } else {
    const quatLevels = Number(meta.quats.levels ?? 2 ** Number(meta.quats.bits) - 1);
    levelsOk(quatLevels >= 3 && quatLevels <= 255 && quatLevels % 2 === 1,
      `sog meta.json: ${quatLevels} rotation levels (an odd count, 3..255, is needed)`);
    unpackGibbs(await plane('quats', 3), n, quatLevels, s.quats);
  }

  const scaleCb = codebookValues(meta.scales.codebook);
  const scaleIdx = await joinedPlane('scales', 'scales_l', Number(meta.scales.bits ?? 8));
  for (let i = 0; i < n * 3; i++) {
    if (scaleIdx[i] >= scaleCb.length) {
      throw new SceneError(`scales plane refers to codebook entry ${scaleIdx[i]} of ${scaleCb.length}`);
    }
    s.scales[i] = scaleCb[scaleIdx[i]];
  }

  let sh0Tex, sh0Stride, alphaTex, alphaStride, alphaOffset;
  if ('opacity' in names) {
    sh0Tex = await plane('sh0', 3); sh0Stride = 3;
    alphaTex = await plane('opacity', 1); alphaStride = 1; alphaOffset = 0;
  } else {
    sh0Tex = await plane('sh0', 4); sh0Stride = 4;
    alphaTex = sh0Tex; alphaStride = 4; alphaOffset = 3;
  }
  const sh0Cb = codebookValues(meta.sh0.codebook);
  const top = 2 ** Number(meta.sh0.opacity_bits ?? 8) - 1;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < 3; c++) {
      const label = sh0Tex[sh0Stride * i + c];
      if (label >= sh0Cb.length) throw new SceneError(`sh0 plane refers to codebook entry ${label} of ${sh0Cb.length}`);
      s.sh0[3 * i + c] = sh0Cb[label];
    }
    s.opacities[i] = logit(clip(alphaTex[alphaStride * i + alphaOffset] / top, 1e-6, 1 - 1e-6));
  }

  if (k) {
    let pal = palette;
    if (shn.shared) {
      if (!pal || pal.K !== k) throw new SceneError('sog layer refers to a shared SH palette the file does not hold');
    } else {
      pal = await readNativePalette(shn, names, read);
      progress('shN_centroids');
    }
    const lab = await plane('shN_labels', 3);
    const width = k * 3;
    for (let i = 0; i < n; i++) {
      const label = pal.count <= 256 ? lab[3 * i] : lab[3 * i] * 256 + lab[3 * i + 1];
      if (label >= pal.count) throw new SceneError(`shN_labels refers to palette entry ${label} of ${pal.count}`);
      s.shN.set(pal.values.subarray(label * width, label * width + width), i * width);
    }
  }
  return s;
}

function concatScenes(parts) {
  const n = parts.reduce((a, p) => a + p.count, 0);
  const out = emptyScene(n, parts[0].K);
  let offset = 0;
  for (const p of parts) {
    for (const [key, width] of [['means', 3], ['scales', 3], ['quats', 4], ['opacities', 1], ['sh0', 3],
      ['shN', 3 * out.K]]) {
      out[key].set(p[key], offset * width);
    }
    offset += p.count;
  }
  return out;
}

/** Decode a native-profile meta (plain or layered, version 3) with `read(name) -> Uint8Array`. */
export async function decodeNative(meta, read, progress = () => {}) {
  try {
    if (meta.version === NATIVE_LAYERED) {
      const layers = meta.layers;
      if (!Array.isArray(layers) || !layers.length || !layers.every((m) => m && typeof m === 'object')) {
        throw new SceneError('malformed sog meta.json (a layered file needs a non-empty list of layers)');
      }
      if (layers.some((m) => !NATIVE_READ_VERSIONS.includes(m.version))) {
        throw new SceneError('malformed sog meta.json (each layer must be a version 4 or 5 meta)');
      }
      const shared = meta.shN ? await readNativePalette(meta.shN, meta.files || {}, read) : null;
      const parts = [];
      for (const m of layers) parts.push(await decodeNativeLayer(m, read, shared, progress));
      if (new Set(parts.map((p) => p.K)).size > 1) {
        throw new SceneError('malformed sog meta.json (its layers have different SH degrees)');
      }
      const total = parts.reduce((a, p) => a + p.count, 0);
      if (total !== meta.count) throw new SceneError(`sog meta.json says ${meta.count} Gaussians, its layers hold ${total}`);
      return concatScenes(parts);
    }
    return await decodeNativeLayer(meta, read, null, progress);
  } catch (err) {
    if (err instanceof SceneError) throw err;
    throw new SceneError(`malformed sog meta.json (${err.name}: ${err.message})`);
  }
}

// ---------------------------------------------------------------------------------------------- SOG v2

/** Decode a PlayCanvas SOG v2 meta, as sog/codec/v2.py `decode`. */
export async function decodeSogV2(meta, read, progress = () => {}) {
  try {
    if (meta.version !== 2) throw new SceneError(`unsupported SOG meta version ${JSON.stringify(meta.version)} (expected 2)`);
    const n = Number(meta.count);
    if (!(n > 0) || !Number.isInteger(n)) throw new SceneError('SOG file holds zero Gaussians');
    const plane = async (name) => {
      const img = await decodeImage(read(name), name, 4);
      if (img.width * img.height < n) {
        throw new SceneError(`${name}: ${img.width}x${img.height} image is too small for ${n} Gaussians`);
      }
      progress(name);
      return img.data;
    };
    const shn = meta.shN;
    const bands = shn ? Number(shn.bands) : 0;
    const k = SH_REST_COUNT[bands];
    if (k === undefined) throw new SceneError(`unsupported shN bands ${bands}`);
    const s = emptyScene(n, k);
    const [lo, hi] = [await plane(meta.means.files[0]), await plane(meta.means.files[1])];
    const mins = meta.means.mins.map(Number), maxs = meta.means.maxs.map(Number);
    for (let i = 0; i < n; i++) {
      for (let a = 0; a < 3; a++) {
        const q = (lo[4 * i + a] | (hi[4 * i + a] << 8)) / 65535;
        s.means[3 * i + a] = invLog(mins[a] + (maxs[a] - mins[a]) * q);
      }
    }
    unpackQuats(await plane(meta.quats.files[0]), n, s.quats);
    const scaleCb = Float32Array.from(meta.scales.codebook, Number);
    const sc = await plane(meta.scales.files[0]);
    const sh0Cb = Float32Array.from(meta.sh0.codebook, Number);
    const sh = await plane(meta.sh0.files[0]);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < 3; c++) {
        if (sc[4 * i + c] >= scaleCb.length || sh[4 * i + c] >= sh0Cb.length) {
          throw new SceneError('SOG plane refers past the end of its codebook');
        }
        s.scales[3 * i + c] = scaleCb[sc[4 * i + c]];
        s.sh0[3 * i + c] = sh0Cb[sh[4 * i + c]];
      }
      s.opacities[i] = logit(clip(sh[4 * i + 3] / 255, 1e-6, 1 - 1e-6));
    }
    if (k) {
      const cb = Float32Array.from(shn.codebook, Number);
      const cent = await decodeImage(read(shn.files[0]), shn.files[0], 4);
      if (cent.width !== 64 * k) throw new SceneError(`shN centroids image is ${cent.width} wide, expected ${64 * k}`);
      const entries = (cent.width * cent.height) / k;
      const count = Math.min(Number(shn.count), entries);
      const lab = await plane(shn.files[1]);
      const width = 3 * k;
      for (let i = 0; i < n; i++) {
        const label = lab[4 * i] | (lab[4 * i + 1] << 8);
        if (label >= count) continue;  // zeros, as the Python reader
        for (let j = 0; j < k; j++) {
          for (let c = 0; c < 3; c++) {
            const v = cent.data[(label * k + j) * 4 + c];
            if (v >= cb.length) throw new SceneError('shN centroids refer past the end of their codebook');
            s.shN[i * width + j * 3 + c] = cb[v];
          }
        }
      }
    }
    return s;
  } catch (err) {
    if (err instanceof SceneError) throw err;
    throw new SceneError(`malformed SOG meta.json (${err.name}: ${err.message})`);
  }
}

// ---------------------------------------------------------------------------------------------- raw floats

/**
 * sog's raw float file (sog/viewer/raw.py): 8 magic bytes "SOGRAW01", uint32 LE header length, a JSON header
 * {"count", "sh_degree"} padded with spaces to a multiple of 4 bytes, then float32 LE arrays means (N,3),
 * scales (N,3), quats (N,4), opacities (N,), sh0 (N,3), shN (N,K,3).
 */
export function decodeRaw(buffer) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  if (bytes.length < 12 || new TextDecoder().decode(bytes.subarray(0, 8)) !== RAW_MAGIC) {
    throw new SceneError('not a sog raw float file');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const hlen = view.getUint32(8, true);
  let header;
  try { header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + hlen))); } catch (err) {
    throw new SceneError('sog raw float file: bad header');
  }
  const n = header.count, k = SH_REST_COUNT[header.sh_degree];
  if (!(n > 0) || k === undefined) throw new SceneError('sog raw float file: bad count or SH degree');
  const start = 12 + hlen;
  const floats = n * (3 + 3 + 4 + 1 + 3 + 3 * k);
  if (bytes.length < start + 4 * floats) throw new SceneError('sog raw float file is truncated');
  const all = bytes.byteOffset % 4 === 0 && (bytes.byteOffset + start) % 4 === 0
    ? new Float32Array(bytes.buffer, bytes.byteOffset + start, floats)
    : new Float32Array(bytes.slice(start, start + 4 * floats).buffer);
  const s = { count: n, K: k, shDegree: header.sh_degree };
  let offset = 0;
  for (const [key, width] of [['means', 3], ['scales', 3], ['quats', 4], ['opacities', 1], ['sh0', 3], ['shN', 3 * k]]) {
    s[key] = all.subarray(offset, offset + n * width);
    offset += n * width;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------- any scene

/**
 * Decode a scene file's bytes: a .sog zip (native or SOG v2) or a raw float file. `progress(stage)` is called
 * after each decoded plane. Throws SceneError with a one-line message for anything it cannot read.
 */
export async function decodeScene(buffer, progress = () => {}) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  if (bytes.length >= 8 && new TextDecoder().decode(bytes.subarray(0, 8)) === RAW_MAGIC) {
    return { ...decodeRaw(bytes), format: 'raw' };
  }
  if (bytes.length < 4 || bytes[0] !== 0x50 || bytes[1] !== 0x4b || bytes[2] !== 3 || bytes[3] !== 4) {
    throw new SceneError('not a .sog file (no zip header)');
  }
  const entries = await readZip(bytes);
  if (!entries.has('meta.json')) throw new SceneError('.sog has no meta.json');
  let meta;
  try { meta = JSON.parse(new TextDecoder().decode(entries.get('meta.json'))); } catch (err) {
    throw new SceneError(`meta.json is not valid JSON (${err.message})`);
  }
  if (!meta || typeof meta !== 'object' || Array.isArray(meta)) throw new SceneError('meta.json is not a JSON object');
  const read = (name) => {
    if (typeof name !== 'string' || !entries.has(name)) throw new SceneError(`.sog is missing ${name}`);
    return entries.get(name);
  };
  if (meta.profile === 'sog') return { ...(await decodeNative(meta, read, progress)), format: 'sog-native', meta };
  return { ...(await decodeSogV2(meta, read, progress)), format: 'sog-v2', meta };
}
