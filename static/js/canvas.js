// Drawing pad (mouse, touch, pen via pointer events) and the MNIST-style preprocessing:
// crop to the stroke's bounding box, scale into 20x20 keeping the aspect ratio (area average),
// centre by centre of mass in 28x28. Output: 28 rows of 28 floats in [0, 1], white on black. Also paints
// any dataset's image (grey or RGB) onto a canvas.

const SIDE = 28, BOX = 20, CENTRE = 14.5;
// The bounding box is of the stroke's core (MNIST boxed the binary original, before smoothing),
// so a soft edge does not shrink the digit; the centre of mass still counts every pixel.
const INK = 0.3;

/** Grey values (row-major, [0, 1], white ink on black) of size width x height -> 28x28 rows. */
export function toMnist(gray, width, height) {
  let x0 = width, y0 = height, x1 = -1, y1 = -1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (gray[y * width + x] > INK) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
  }
  const out = Array.from({ length: SIDE }, () => new Array(SIDE).fill(0));
  if (x1 < 0) return out; // nothing drawn
  const cw = x1 - x0 + 1, ch = y1 - y0 + 1;
  const scale = BOX / Math.max(cw, ch); // source pixels -> target pixels
  // centre of mass of the crop, in crop pixels (pixel centres at i + 0.5)
  let mass = 0, mx = 0, my = 0;
  for (let y = 0; y < ch; y++) {
    for (let x = 0; x < cw; x++) {
      const v = gray[(y0 + y) * width + x0 + x];
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  }
  // target coordinate of crop point p: p * scale + offset. MNIST put the centre of mass on
  // pixel 14 (its centre, 14.5 here), which is where real test digits have it on average.
  const ox = CENTRE - (mx / mass) * scale, oy = CENTRE - (my / mass) * scale;
  const wx = coverage(cw, scale, ox), wy = coverage(ch, scale, oy);
  // out = Wy . crop . Wx^T, done as two passes: rows first, (ch, 28), then columns
  const rows = new Float64Array(ch * SIDE);
  for (let y = 0; y < ch; y++) {
    const base = (y0 + y) * width + x0;
    for (let u = 0; u < SIDE; u++) {
      const [from, weights] = wx[u];
      let sum = 0;
      for (let i = 0; i < weights.length; i++) sum += weights[i] * gray[base + from + i];
      rows[y * SIDE + u] = sum;
    }
  }
  for (let v = 0; v < SIDE; v++) {
    const [from, weights] = wy[v];
    for (let u = 0; u < SIDE; u++) {
      let sum = 0;
      for (let j = 0; j < weights.length; j++) sum += weights[j] * rows[(from + j) * SIDE + u];
      out[v][u] = Math.min(1, Math.max(0, sum));
    }
  }
  return out;
}

// For each of the 28 target pixels [t, t+1): the first source pixel it covers and the share
// of each covered source pixel, so that a target pixel is the mean of the source under it.
function coverage(length, scale, offset) {
  const result = [];
  for (let t = 0; t < SIDE; t++) {
    const a = (t - offset) / scale, b = (t + 1 - offset) / scale; // source interval
    const from = Math.max(0, Math.floor(a)), to = Math.min(length, Math.ceil(b));
    const weights = [];
    for (let i = from; i < to; i++) weights.push((Math.min(b, i + 1) - Math.max(a, i)) * scale);
    result.push([from, weights]);
  }
  return result;
}

/** The pad canvas (white ink on black) -> 28x28 rows the models receive. */
export function canvasToMnist(canvas) {
  const { width, height } = canvas;
  const rgba = canvas.getContext("2d", { willReadFrequently: true }).getImageData(0, 0, width, height).data;
  const gray = new Float32Array(width * height);
  for (let i = 0; i < gray.length; i++) gray[i] = rgba[i * 4] / 255;
  return toMnist(gray, width, height);
}

/** Paints an image onto a (small) canvas, one canvas pixel per image pixel: H rows of W grey values, or
 * (C, H, W) channels (1 grey, 3 RGB), values in [0, 1]. The canvas takes the image's size. */
export function paintImage(canvas, image) {
  const planes = Array.isArray(image[0]?.[0]) ? image : [image]; // (C, H, W)
  const height = planes[0].length, width = planes[0][0].length;
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext("2d");
  const pixels = ctx.createImageData(width, height);
  const [r, g, b] = planes.length === 3 ? planes : [planes[0], planes[0], planes[0]];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 4;
      pixels.data[i] = Math.round(r[y][x] * 255);
      pixels.data[i + 1] = Math.round(g[y][x] * 255);
      pixels.data[i + 2] = Math.round(b[y][x] * 255);
      pixels.data[i + 3] = 255;
    }
  }
  ctx.putImageData(pixels, 0, 0);
}

/** A canvas to draw on. onChange(final) fires while drawing (final=false) and at stroke end. */
export class DrawPad {
  constructor(canvas, onChange) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.onChange = onChange;
    this.last = null;
    this.clear();
    canvas.addEventListener("pointerdown", (e) => this.down(e));
    canvas.addEventListener("pointermove", (e) => this.move(e));
    for (const name of ["pointerup", "pointercancel"]) canvas.addEventListener(name, (e) => this.up(e));
  }

  clear() {
    this.ctx.fillStyle = "#000";
    this.ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    this.empty = true;
  }

  point(e) {
    const r = this.canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * (this.canvas.width / r.width), (e.clientY - r.top) * (this.canvas.height / r.height)];
  }

  down(e) {
    e.preventDefault();
    this.canvas.setPointerCapture?.(e.pointerId);
    this.last = this.point(e);
    this.line(this.last, this.last);
  }

  move(e) {
    if (!this.last) return;
    e.preventDefault();
    const p = this.point(e);
    this.line(this.last, p);
    this.last = p;
    this.onChange(false);
  }

  up() {
    if (!this.last) return;
    this.last = null;
    this.onChange(true);
  }

  line(from, to) {
    const ctx = this.ctx;
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = this.canvas.width / 14; // about as thick as an MNIST stroke once scaled
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(...from);
    ctx.lineTo(...to);
    ctx.stroke();
    this.empty = false;
  }
}
