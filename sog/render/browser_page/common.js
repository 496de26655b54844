// What sog's real-viewer pages (engine_page/, spark_page/) share, served as /common.js by sog/render/browser.py:
// bounded waits, the page's error log, base64 of a pixel read-back, and a synchronous WebGL read-back.

export function withTimeout(promise, ms, what) {
    // promise, or a rejection naming `what` after ms milliseconds
    let timer;
    const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms); });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function toBase64(bytes) {
    let s = '';
    const step = 0x8000;
    for (let i = 0; i < bytes.length; i += step) s += String.fromCharCode.apply(null, bytes.subarray(i, i + step));
    return btoa(s);
}

export function collectErrors() {
    // every uncaught error and unhandled rejection of the page, in order
    const errors = [];
    window.addEventListener('error', (e) => errors.push(String(e.message)));
    window.addEventListener('unhandledrejection', (e) => errors.push(String(e.reason)));
    return errors;
}

export function readPixels(gl, w, h, float) {
    // the bound framebuffer's w x h RGBA (rows bottom first) as {data: base64, type}; a WebGL error throws
    gl.getError();                                  // (clear an earlier error: only the read's own is reported)
    let pixels, type;
    if (float) {
        const floats = new Float32Array(w * h * 4);
        gl.readPixels(0, 0, w, h, gl.RGBA, gl.FLOAT, floats);
        pixels = new Uint8Array(floats.buffer);
        type = 'float32';
    } else {
        pixels = new Uint8Array(w * h * 4);
        gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, pixels);
        type = 'uint8';
    }
    const glError = gl.getError();
    if (glError !== gl.NO_ERROR) throw new Error(`WebGL error ${glError} reading the pixels back`);
    return { data: toBase64(pixels), type, width: w, height: h };
}
