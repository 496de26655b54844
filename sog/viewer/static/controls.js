// One camera for every view: orbit (drag), look (right drag), pan (shift or middle drag), zoom (wheel), fly
// (WASD, Q/E down/up) and reset (R). The pose is position + yaw/pitch about the scene's up axis + the distance
// to the orbit's focus point; `pose()` gives the camera's world position and rotation columns (right, up, back:
// a PlayCanvas camera looks down its -Z).

const sub = (a, b) => [a[0] - b[0], a[1] - b[1], a[2] - b[2]];
const add = (a, b) => [a[0] + b[0], a[1] + b[1], a[2] + b[2]];
const scale = (a, s) => [a[0] * s, a[1] * s, a[2] * s];
const dot = (a, b) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
const cross = (a, b) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
const normalize = (a) => scale(a, 1 / (Math.hypot(a[0], a[1], a[2]) || 1));

export class CameraRig {
  /** `up` (3,) the scene's up axis; `centre` (3,), `radius` of the scene; `fov` vertical, degrees. */
  constructor({ up = [0, -1, 0], centre = [0, 0, 0], radius = 1, fov = 50 } = {}) {
    this.up = normalize(up);
    const axes = [[1, 0, 0], [0, 1, 0], [0, 0, 1]];
    const least = axes.reduce((best, a) => (Math.abs(dot(a, this.up)) < Math.abs(dot(best, this.up)) ? a : best));
    this.f0 = normalize(sub(least, scale(this.up, dot(least, this.up))));
    this.s0 = normalize(cross(this.up, this.f0));
    this.centre = centre;
    this.radius = radius;
    this.fov = fov;
    this.keys = new Set();
    this.listeners = [];
    this.override = null;
    this.reset();
  }

  onChange(fn) { this.listeners.push(fn); }
  changed() { for (const fn of this.listeners) fn(); }

  forward() {
    const cp = Math.cos(this.pitch), sp = Math.sin(this.pitch);
    return normalize(add(add(scale(this.f0, cp * Math.cos(this.yaw)), scale(this.s0, cp * Math.sin(this.yaw))),
      scale(this.up, sp)));
  }

  target() { return add(this.position, scale(this.forward(), this.distance)); }

  reset() {
    this.override = null;
    this.yaw = 0;
    this.pitch = -0.3;  // a little from above
    this.distance = this.radius / Math.tan((this.fov * Math.PI) / 360) * 1.5;
    this.position = sub(this.centre, scale(this.forward(), this.distance));
    this.changed();
  }

  /** The camera's world `position` and rotation columns `right`, `camUp`, `back`; `fov` vertical degrees. */
  pose() {
    if (this.override) return this.override;
    const f = this.forward();
    const right = normalize(cross(f, this.up));
    return { position: this.position, right, camUp: cross(right, f), back: scale(f, -1), fov: this.fov };
  }

  /** Put the camera at an exact pose (tests, links): columns as in `pose()`; later interaction starts from it. */
  setPose({ position, right, camUp, back, fov }) {
    const f = normalize(scale(back, -1));
    this.pitch = Math.asin(Math.max(-1, Math.min(1, dot(f, this.up))));
    this.yaw = Math.atan2(dot(f, this.s0), dot(f, this.f0));
    this.position = position.slice();
    if (fov) this.fov = fov;
    this.override = { position: position.slice(), right, camUp, back, fov: this.fov };
    this.changed();
  }

  orbit(dx, dy) {
    const t = this.target();
    this.rotate(dx, dy);
    this.position = sub(t, scale(this.forward(), this.distance));
  }

  rotate(dx, dy) {
    this.override = null;
    this.yaw += dx * 0.006;
    this.pitch = Math.max(-1.55, Math.min(1.55, this.pitch - dy * 0.006));
  }

  pan(dx, dy) {
    const p = this.pose();
    const k = (this.distance * 2 * Math.tan((this.fov * Math.PI) / 360)) / 600;
    this.override = null;
    this.position = add(this.position, add(scale(p.right, -dx * k), scale(p.camUp, dy * k)));
  }

  zoom(delta) {
    const t = this.target();
    this.override = null;
    this.distance = Math.max(this.radius * 1e-3, this.distance * Math.exp(delta * 0.0015));
    this.position = sub(t, scale(this.forward(), this.distance));
  }

  /** Advance fly movement by `dt` seconds; true when the camera moved. */
  tick(dt) {
    if (!this.keys.size) return false;
    const p = this.pose();
    const speed = this.radius * 0.6 * dt * (this.keys.has('shift') ? 4 : 1);
    let move = [0, 0, 0];
    const f = scale(p.back, -1);
    if (this.keys.has('w')) move = add(move, f);
    if (this.keys.has('s')) move = sub(move, f);
    if (this.keys.has('d')) move = add(move, p.right);
    if (this.keys.has('a')) move = sub(move, p.right);
    if (this.keys.has('e')) move = add(move, this.up);
    if (this.keys.has('q')) move = sub(move, this.up);
    if (!dot(move, move)) return false;
    this.override = null;
    this.position = add(this.position, scale(normalize(move), speed));
    this.changed();
    return true;
  }

  /** Mouse and keyboard on `element` (the views) and the window. */
  attach(element) {
    let last = null;
    element.addEventListener('contextmenu', (e) => e.preventDefault());
    element.addEventListener('pointerdown', (e) => {
      last = { x: e.clientX, y: e.clientY, button: e.button, shift: e.shiftKey };
      element.setPointerCapture(e.pointerId);
    });
    element.addEventListener('pointermove', (e) => {
      if (!last) return;
      const dx = e.clientX - last.x, dy = e.clientY - last.y;
      last.x = e.clientX; last.y = e.clientY;
      if (last.button === 1 || last.shift) this.pan(dx, dy);
      else if (last.button === 2) this.rotate(dx, dy);
      else this.orbit(dx, dy);
      this.changed();
    });
    const end = () => { last = null; };
    element.addEventListener('pointerup', end);
    element.addEventListener('pointercancel', end);
    element.addEventListener('wheel', (e) => { e.preventDefault(); this.zoom(e.deltaY); this.changed(); },
      { passive: false });
    window.addEventListener('keydown', (e) => {
      const key = e.key.toLowerCase();
      if (key === 'r') this.reset();
      else if ('wasdqe'.includes(key) && key.length === 1) this.keys.add(key);
      else if (key === 'shift') this.keys.add('shift');
    });
    window.addEventListener('keyup', (e) => { this.keys.delete(e.key.toLowerCase()); });
    window.addEventListener('blur', () => this.keys.clear());
  }
}
