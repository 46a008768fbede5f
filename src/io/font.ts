/**
 * A tiny built-in bitmap font (5x7 cell, proportional, with 2 descender rows) so that sample grids
 * and charts can carry labels on machines without any fonts or font libraries installed.
 *
 * Glyphs are drawn as text art below ('#' = ink). Rows 0-6 hold capitals and digits (row 6 is the
 * baseline row); lowercase letters use rows 2-6 and g, j, p, q, y, ',' and ';' descend into rows
 * 7-8. Each glyph's width is the length of its rows, so '.' and 'i' are narrow.
 * Characters without a glyph are drawn as a small box.
 */
import { blendPixel, type Rgb, type RgbImage } from './canvas.js';

/** Cap height in pixels at scale 1. */
export const FONT_CAP_HEIGHT = 7;
/** Height of one text line at scale 1: cap height + 2 descender rows + 1 row of spacing. */
export const FONT_LINE_HEIGHT = 10;
/** Blank columns between glyphs at scale 1. */
const GLYPH_SPACING = 1;

// prettier-ignore
const GLYPH_ART: Record<string, string[]> = {
  '0': ['.###.', '#...#', '#..##', '#.#.#', '##..#', '#...#', '.###.'],
  '1': ['..#..', '.##..', '..#..', '..#..', '..#..', '..#..', '.###.'],
  '2': ['.###.', '#...#', '....#', '...#.', '..#..', '.#...', '#####'],
  '3': ['.###.', '#...#', '....#', '..##.', '....#', '#...#', '.###.'],
  '4': ['...#.', '..##.', '.#.#.', '#..#.', '#####', '...#.', '...#.'],
  '5': ['#####', '#....', '####.', '....#', '....#', '#...#', '.###.'],
  '6': ['..##.', '.#...', '#....', '####.', '#...#', '#...#', '.###.'],
  '7': ['#####', '....#', '...#.', '..#..', '.#...', '.#...', '.#...'],
  '8': ['.###.', '#...#', '#...#', '.###.', '#...#', '#...#', '.###.'],
  '9': ['.###.', '#...#', '#...#', '.####', '....#', '...#.', '.##..'],
  'A': ['.###.', '#...#', '#...#', '#####', '#...#', '#...#', '#...#'],
  'B': ['####.', '#...#', '#...#', '####.', '#...#', '#...#', '####.'],
  'C': ['.###.', '#...#', '#....', '#....', '#....', '#...#', '.###.'],
  'D': ['####.', '#...#', '#...#', '#...#', '#...#', '#...#', '####.'],
  'E': ['#####', '#....', '#....', '####.', '#....', '#....', '#####'],
  'F': ['#####', '#....', '#....', '####.', '#....', '#....', '#....'],
  'G': ['.###.', '#...#', '#....', '#.###', '#...#', '#...#', '.####'],
  'H': ['#...#', '#...#', '#...#', '#####', '#...#', '#...#', '#...#'],
  'I': ['###', '.#.', '.#.', '.#.', '.#.', '.#.', '###'],
  'J': ['..###', '...#.', '...#.', '...#.', '...#.', '#..#.', '.##..'],
  'K': ['#...#', '#..#.', '#.#..', '##...', '#.#..', '#..#.', '#...#'],
  'L': ['#....', '#....', '#....', '#....', '#....', '#....', '#####'],
  'M': ['#...#', '##.##', '#.#.#', '#.#.#', '#...#', '#...#', '#...#'],
  'N': ['#...#', '#...#', '##..#', '#.#.#', '#..##', '#...#', '#...#'],
  'O': ['.###.', '#...#', '#...#', '#...#', '#...#', '#...#', '.###.'],
  'P': ['####.', '#...#', '#...#', '####.', '#....', '#....', '#....'],
  'Q': ['.###.', '#...#', '#...#', '#...#', '#.#.#', '#..#.', '.##.#'],
  'R': ['####.', '#...#', '#...#', '####.', '#.#..', '#..#.', '#...#'],
  'S': ['.####', '#....', '#....', '.###.', '....#', '....#', '####.'],
  'T': ['#####', '..#..', '..#..', '..#..', '..#..', '..#..', '..#..'],
  'U': ['#...#', '#...#', '#...#', '#...#', '#...#', '#...#', '.###.'],
  'V': ['#...#', '#...#', '#...#', '#...#', '#...#', '.#.#.', '..#..'],
  'W': ['#...#', '#...#', '#...#', '#.#.#', '#.#.#', '#.#.#', '.#.#.'],
  'X': ['#...#', '#...#', '.#.#.', '..#..', '.#.#.', '#...#', '#...#'],
  'Y': ['#...#', '#...#', '.#.#.', '..#..', '..#..', '..#..', '..#..'],
  'Z': ['#####', '....#', '...#.', '..#..', '.#...', '#....', '#####'],
  'a': ['.....', '.....', '.###.', '....#', '.####', '#...#', '.####'],
  'b': ['#....', '#....', '####.', '#...#', '#...#', '#...#', '####.'],
  'c': ['....', '....', '.###', '#...', '#...', '#...', '.###'],
  'd': ['....#', '....#', '.####', '#...#', '#...#', '#...#', '.####'],
  'e': ['.....', '.....', '.###.', '#...#', '#####', '#....', '.###.'],
  'f': ['..##', '.#..', '###.', '.#..', '.#..', '.#..', '.#..'],
  'g': ['.....', '.....', '.####', '#...#', '#...#', '#...#', '.####', '....#', '.###.'],
  'h': ['#....', '#....', '#.##.', '##..#', '#...#', '#...#', '#...#'],
  'i': ['.#.', '...', '##.', '.#.', '.#.', '.#.', '###'],
  'j': ['...#', '....', '..##', '...#', '...#', '...#', '...#', '#..#', '.##.'],
  'k': ['#...', '#...', '#..#', '#.#.', '##..', '#.#.', '#..#'],
  'l': ['##.', '.#.', '.#.', '.#.', '.#.', '.#.', '###'],
  'm': ['.....', '.....', '##.#.', '#.#.#', '#.#.#', '#.#.#', '#.#.#'],
  'n': ['.....', '.....', '#.##.', '##..#', '#...#', '#...#', '#...#'],
  'o': ['.....', '.....', '.###.', '#...#', '#...#', '#...#', '.###.'],
  'p': ['.....', '.....', '####.', '#...#', '#...#', '#...#', '####.', '#....', '#....'],
  'q': ['.....', '.....', '.####', '#...#', '#...#', '#...#', '.####', '....#', '....#'],
  'r': ['....', '....', '#.##', '##..', '#...', '#...', '#...'],
  's': ['....', '....', '.###', '#...', '.##.', '...#', '###.'],
  't': ['.#..', '.#..', '###.', '.#..', '.#..', '.#.#', '..#.'],
  'u': ['.....', '.....', '#...#', '#...#', '#...#', '#..##', '.##.#'],
  'v': ['.....', '.....', '#...#', '#...#', '#...#', '.#.#.', '..#..'],
  'w': ['.....', '.....', '#...#', '#...#', '#.#.#', '#.#.#', '.#.#.'],
  'x': ['.....', '.....', '#...#', '.#.#.', '..#..', '.#.#.', '#...#'],
  'y': ['.....', '.....', '#...#', '#...#', '#...#', '#...#', '.####', '....#', '.###.'],
  'z': ['.....', '.....', '#####', '...#.', '..#..', '.#...', '#####'],
  ' ': ['...', '...', '...', '...', '...', '...', '...'],
  '.': ['..', '..', '..', '..', '..', '##', '##'],
  ',': ['..', '..', '..', '..', '..', '##', '.#', '#.'],
  ':': ['..', '..', '##', '##', '..', '##', '##'],
  ';': ['..', '..', '##', '##', '..', '##', '##', '.#', '#.'],
  '!': ['#', '#', '#', '#', '#', '.', '#'],
  '?': ['.###.', '#...#', '....#', '...#.', '..#..', '.....', '..#..'],
  '-': ['....', '....', '....', '####', '....', '....', '....'],
  '+': ['.....', '..#..', '..#..', '#####', '..#..', '..#..', '.....'],
  '=': ['....', '....', '####', '....', '####', '....', '....'],
  '_': ['.....', '.....', '.....', '.....', '.....', '.....', '.....', '#####'],
  '/': ['....#', '....#', '...#.', '..#..', '.#...', '#....', '#....'],
  '\\': ['#....', '#....', '.#...', '..#..', '...#.', '....#', '....#'],
  '(': ['..#', '.#.', '#..', '#..', '#..', '.#.', '..#'],
  ')': ['#..', '.#.', '..#', '..#', '..#', '.#.', '#..'],
  '[': ['###', '#..', '#..', '#..', '#..', '#..', '###'],
  ']': ['###', '..#', '..#', '..#', '..#', '..#', '###'],
  '{': ['..##', '.#..', '.#..', '#...', '.#..', '.#..', '..##'],
  '}': ['##..', '..#.', '..#.', '...#', '..#.', '..#.', '##..'],
  '<': ['...#', '..#.', '.#..', '#...', '.#..', '..#.', '...#'],
  '>': ['#...', '.#..', '..#.', '...#', '..#.', '.#..', '#...'],
  '%': ['##...', '##..#', '...#.', '..#..', '.#...', '#..##', '...##'],
  '\'': ['#', '#', '#', '.', '.', '.', '.'],
  '"': ['#.#', '#.#', '#.#', '...', '...', '...', '...'],
  '`': ['#.', '.#', '..', '..', '..', '..', '..'],
  '#': ['.#.#.', '.#.#.', '#####', '.#.#.', '#####', '.#.#.', '.#.#.'],
  '*': ['.....', '..#..', '#.#.#', '.###.', '#.#.#', '..#..', '.....'],
  '&': ['.##..', '#..#.', '#.#..', '.#...', '#.#.#', '#..#.', '.##.#'],
  '@': ['.###.', '#...#', '....#', '.##.#', '#.#.#', '#.#.#', '.###.'],
  '^': ['..#..', '.#.#.', '#...#', '.....', '.....', '.....', '.....'],
  '|': ['#', '#', '#', '#', '#', '#', '#', '#'],
  '~': ['.....', '.....', '.#...', '#.#.#', '...#.', '.....', '.....'],
  '$': ['..#..', '.####', '#.#..', '.###.', '..#.#', '####.', '..#..'],
};

/** A glyph as column count plus ink rows (bit (w-1-x) of row y is pixel x). */
interface Glyph {
  width: number;
  rows: number[];
}

const GLYPHS = new Map<string, Glyph>();
for (const [ch, art] of Object.entries(GLYPH_ART)) {
  const width = art[0]!.length;
  GLYPHS.set(ch, { width, rows: art.map((r) => [...r].reduce((acc, c) => (acc << 1) | (c === '#' ? 1 : 0), 0)) });
}
const FALLBACK: Glyph = { width: 4, rows: [0, 0b1111, 0b1001, 0b1001, 0b1001, 0b1111, 0] };

/** The characters the font can draw (others render as a box). */
export const FONT_CHARS: string = [...GLYPHS.keys()].join('');

/** Options for drawText. */
export interface TextOptions {
  /** Ink colour (default black). */
  color?: Rgb;
  /** Integer pixel magnification (default 1: 7-pixel capitals). */
  scale?: number;
  /** Horizontal anchor: x is the left edge, centre or right edge of the text (default 'left'). */
  align?: 'left' | 'center' | 'right';
  /** 0: normal; 90: rotated counter-clockwise, reading bottom to top (for vertical axis labels). */
  rotate?: 0 | 90;
}

function glyphOf(ch: string): Glyph {
  return GLYPHS.get(ch) ?? FALLBACK;
}

/** Width and height in pixels of `text` (one line) at `scale`, before any rotation. */
export function measureText(text: string, scale = 1): { width: number; height: number } {
  let w = 0;
  for (const ch of text) w += glyphOf(ch).width + GLYPH_SPACING;
  if (w > 0) w -= GLYPH_SPACING;
  return { width: w * scale, height: FONT_CAP_HEIGHT * scale };
}

/**
 * Draw one line of `text` with the top of its capitals at y. With `rotate: 90`, the text runs
 * upwards: (x, y) is then the left of the capitals' top after rotation and `align` applies along
 * the vertical direction (e.g. 'center' centres the text on y).
 * Returns the advance (text length in pixels).
 */
export function drawText(img: RgbImage, text: string, x: number, y: number, opts: TextOptions = {}): number {
  const color = opts.color ?? [0, 0, 0];
  const s = Math.max(1, Math.round(opts.scale ?? 1));
  const { width } = measureText(text, s);
  const shift = opts.align === 'center' ? Math.round(width / 2) : opts.align === 'right' ? width : 0;
  x = Math.round(x);
  y = Math.round(y);
  const rot = opts.rotate === 90;
  let pen = 0;
  for (const ch of text) {
    const g = glyphOf(ch);
    for (let gy = 0; gy < g.rows.length; gy++) {
      const bits = g.rows[gy]!;
      if (bits === 0) continue;
      for (let gx = 0; gx < g.width; gx++) {
        if (!((bits >> (g.width - 1 - gx)) & 1)) continue;
        // (u, v): position in the unrotated text box.
        const u = pen + gx * s - shift;
        const v = gy * s;
        for (let dy = 0; dy < s; dy++) {
          for (let dx = 0; dx < s; dx++) {
            if (rot) blendPixel(img, x + v + dy, y - (u + dx), color);
            else blendPixel(img, x + u + dx, y + v + dy, color);
          }
        }
      }
    }
    pen += (g.width + GLYPH_SPACING) * s;
  }
  return width;
}

/**
 * Shorten `text` so it fits in `maxWidth` pixels at `scale`, ending it with '..' when cut.
 */
export function fitText(text: string, maxWidth: number, scale = 1): string {
  if (measureText(text, scale).width <= maxWidth) return text;
  const chars = [...text];
  while (chars.length > 0 && measureText(chars.join('') + '..', scale).width > maxWidth) chars.pop();
  return chars.length > 0 ? chars.join('') + '..' : '';
}

/**
 * Break `text` at spaces into lines of at most `maxWidth` pixels at `scale` (greedy). A word wider
 * than `maxWidth` gets a line of its own and is not cut: callers that must not overflow widen
 * their box to `widestWord` first.
 */
export function wrapText(text: string, maxWidth: number, scale = 1): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    const next = line ? `${line} ${word}` : word;
    if (line && measureText(next, scale).width > maxWidth) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

/** Width in pixels of the widest space-separated word of `text` (0 for none). */
export function widestWord(text: string, scale = 1): number {
  return Math.max(0, ...text.split(/\s+/).filter(Boolean).map((w) => measureText(w, scale).width));
}
