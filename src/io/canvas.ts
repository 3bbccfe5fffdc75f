/** An RGB raster with the few drawing primitives the plots need (pixels, lines, rectangles, text). */
import { GLYPH_ADVANCE, GLYPH_HEIGHT, glyph } from "./font5x7.js";
import type { Image8 } from "./png.js";

/** A colour, 0..255 per channel. */
export type RGB = readonly [number, number, number];

/** An RGB raster to draw plots on, saved as PNG. */
export class Canvas {
  readonly data: Uint8Array;
  /** When set, pixels outside [x0, x1] x [y0, y1] are left alone (keeps marks inside a plot box). */
  clip: { x0: number; y0: number; x1: number; y1: number } | null = null;
  constructor(
    readonly width: number,
    readonly height: number,
    background: RGB = [255, 255, 255],
  ) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new Error(`Canvas: size must be positive integers, got ${width}x${height}`);
    }
    this.data = new Uint8Array(width * height * 3);
    for (let i = 0; i < width * height; i++) this.data.set(background, 3 * i);
  }

  /** Sets pixel (x, y) (top-left origin), blending with `alpha` in [0, 1]; off-canvas is ignored. */
  set(x: number, y: number, c: RGB, alpha = 1): void {
    x = Math.round(x);
    y = Math.round(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const k = this.clip;
    if (k && (x < k.x0 || x > k.x1 || y < k.y0 || y > k.y1)) return;
    const i = 3 * (y * this.width + x);
    for (let k = 0; k < 3; k++)
      this.data[i + k] = Math.round(alpha * c[k] + (1 - alpha) * this.data[i + k]);
  }

  /** Fill the rectangle of width w and height h from (x, y), blending with opacity `alpha`. */
  fillRect(x: number, y: number, w: number, h: number, c: RGB, alpha = 1): void {
    for (let j = Math.round(y); j < Math.round(y + h); j++)
      for (let i = Math.round(x); i < Math.round(x + w); i++) this.set(i, j, c, alpha);
  }

  /** 1-px outline of the rectangle with corners (x, y) and (x + w - 1, y + h - 1). */
  strokeRect(x: number, y: number, w: number, h: number, c: RGB): void {
    this.line(x, y, x + w - 1, y, c);
    this.line(x, y + h - 1, x + w - 1, y + h - 1, c);
    this.line(x, y, x, y + h - 1, c);
    this.line(x + w - 1, y, x + w - 1, y + h - 1, c);
  }

  /** Bresenham line between rounded endpoints, `thickness` px wide (square pen). */
  line(x0: number, y0: number, x1: number, y1: number, c: RGB, thickness = 1): void {
    x0 = Math.round(x0);
    y0 = Math.round(y0);
    x1 = Math.round(x1);
    y1 = Math.round(y1);
    const dx = Math.abs(x1 - x0);
    const dy = -Math.abs(y1 - y0);
    const sx = x0 < x1 ? 1 : -1;
    const sy = y0 < y1 ? 1 : -1;
    let err = dx + dy;
    const off = Math.floor((thickness - 1) / 2);
    // Bounded by the longer side, so a wild endpoint cannot loop for long after clipping by the caller.
    for (let steps = 0; steps <= dx - dy; steps++) {
      if (thickness <= 1) this.set(x0, y0, c);
      else this.fillRect(x0 - off, y0 - off, thickness, thickness, c);
      if (x0 === x1 && y0 === y1) break;
      const e2 = 2 * err;
      if (e2 >= dy) {
        err += dy;
        x0 += sx;
      }
      if (e2 <= dx) {
        err += dx;
        y0 += sy;
      }
    }
  }

  /** Draws `text` with its top-left corner at (x, y) in the 5x7 font, magnified by integer `scale`. */
  text(x: number, y: number, text: string, c: RGB, scale = 1): void {
    const chars = [...text];
    chars.forEach((ch, n) => {
      const rows = glyph(ch, chars[n - 1]);
      for (let r = 0; r < GLYPH_HEIGHT; r++) {
        for (let col = 0; col < 5; col++) {
          if (rows[r] & (0x10 >> col))
            this.fillRect(x + (n * GLYPH_ADVANCE + col) * scale, y + r * scale, scale, scale, c);
        }
      }
    });
  }

  /** Copies `src` with its top-left corner at (x, y). */
  blit(src: Canvas, x: number, y: number): void {
    for (let j = 0; j < src.height; j++) {
      for (let i = 0; i < src.width; i++) {
        const k = 3 * (j * src.width + i);
        this.set(x + i, y + j, [src.data[k], src.data[k + 1], src.data[k + 2]]);
      }
    }
  }

  /** The canvas as an RGB image for `encodePng` (shares its bytes). */
  toImage(): Image8 {
    return { width: this.width, height: this.height, channels: 3, data: this.data };
  }
}
