// Where the x labels of a chart go so that none runs into another: wrapped on spaces
// under their bar group when the words fit, else rotated 45° (then 90°), else every k-th
// label. Text widths are estimated (no DOM in Node) on the generous side; the boxes are
// the labels' outlines, rotated with them, and two boxes overlap when no axis separates
// them (separating axis theorem on convex quadrilaterals).

export type Point = [number, number];
/** A label's outline: four corners in SVG coordinates. */
export type Box = [Point, Point, Point, Point];

/** Estimated advance of one character, in em: wide enough for digits and lower case in sans-serif fonts. */
const EM_PER_CHAR = 0.66;
const LINE_HEIGHT = 1.2;
const MAX_LINES = 3;

export function textWidth(text: string, fontSize: number): number {
  let em = 0;
  for (const c of text)
    em += /[MWmw@%]/.test(c) ? 0.9 : /[A-Z]/.test(c) ? 0.72 : /[il.,:;|' ]/.test(c) ? 0.34 : EM_PER_CHAR;
  return em * fontSize;
}

export interface PlacedLabel {
  text: string;
  /** The lines drawn (one when rotated). */
  lines: string[];
  /** Anchor: the top centre (horizontal) or the end of the text (rotated). */
  x: number;
  y: number;
  /** Rotation in degrees (0, -45, -90). */
  angle: number;
  shown: boolean;
  box: Box;
}

export interface XLabelLayout {
  labels: PlacedLabel[];
  /** How far the lowest label reaches below the axis line. */
  depth: number;
  /** How far the leftmost label reaches left of x = 0 (a margin to add). */
  overflowLeft: number;
  fontSize: number;
}

/** Lays out one label per category centre; `slot` is the distance between two centres. */
export function layoutXLabels(
  texts: string[],
  centers: number[],
  slot: number,
  axisY: number,
  fontSize = 11,
): XLabelLayout {
  const gap = 4;
  const wrapped = texts.map((t) => wrap(t, slot - gap, fontSize));
  if (wrapped.every((w) => w !== null)) {
    const labels = texts.map((t, i) => horizontal(t, wrapped[i]!, centers[i], axisY + 4, fontSize));
    if (!anyOverlap(labels)) return finish(labels, axisY, fontSize);
  }
  for (const angle of [-45, -90]) {
    for (let every = 1; every <= texts.length; every++) {
      const labels = texts.map((t, i) => rotated(t, centers[i], axisY + 6, angle, fontSize, i % every === 0));
      if (!anyOverlap(labels)) return finish(labels, axisY, fontSize);
      if (angle === -45) break; // at 45° thinning is not tried: 90° packs labels closer first
    }
  }
  throw new Error("unreachable: one label never overlaps itself");
}

/**
 * Greedy wrap into at most MAX_LINES lines of `width`: at plain spaces ("10\u00a0MiB/s" stays
 * whole), and after a hyphen inside a word too wide for a line ("stop-and-copy"); null
 * when a piece still does not fit.
 */
function wrap(text: string, width: number, fontSize: number): string[] | null {
  const lines: string[] = [];
  for (const word of text.split(/ +/).filter(Boolean)) {
    const pieces = textWidth(word, fontSize) > width ? word.split(/(?<=-)/) : [word];
    pieces.forEach((piece, i) => {
      const joined = `${lines[lines.length - 1]}${i ? "" : " "}${piece}`;
      if (lines.length && textWidth(joined, fontSize) <= width) lines[lines.length - 1] = joined;
      else lines.push(piece);
    });
  }
  if (lines.some((l) => textWidth(l, fontSize) > width)) return null;
  return lines.length <= MAX_LINES ? lines : null;
}

function horizontal(text: string, lines: string[], cx: number, top: number, fontSize: number): PlacedLabel {
  const w = Math.max(...lines.map((l) => textWidth(l, fontSize)), 0);
  const h = lines.length * fontSize * LINE_HEIGHT;
  const box: Box = [
    [cx - w / 2, top],
    [cx + w / 2, top],
    [cx + w / 2, top + h],
    [cx - w / 2, top + h],
  ];
  return { text, lines, x: cx, y: top, angle: 0, shown: true, box };
}

/** A one-line label whose end sits under the tick, rotated by `angle` about that end. */
function rotated(text: string, cx: number, y: number, angle: number, fontSize: number, shown: boolean): PlacedLabel {
  const w = textWidth(text, fontSize);
  const a = (angle * Math.PI) / 180;
  const cos = Math.cos(a);
  const sin = Math.sin(a);
  // the text's outline with the anchor (its end, on the baseline) at the origin, then rotated
  const local: Point[] = [
    [-w, -0.8 * fontSize],
    [0, -0.8 * fontSize],
    [0, 0.25 * fontSize],
    [-w, 0.25 * fontSize],
  ];
  // the anchor goes low enough that the outline's highest corner stays below the axis
  const corners = local.map(([px, py]) => [px * cos - py * sin, px * sin + py * cos] as Point);
  const dy = y - Math.min(...corners.map((c) => c[1]));
  const box = corners.map(([px, py]) => [cx + px, dy + py] as Point) as Box;
  return { text, lines: [text], x: cx, y: dy, angle, shown, box };
}

function finish(labels: PlacedLabel[], axisY: number, fontSize: number): XLabelLayout {
  const shown = labels.filter((l) => l.shown);
  const ys = shown.flatMap((l) => l.box.map((c) => c[1]));
  const xs = shown.flatMap((l) => l.box.map((c) => c[0]));
  return {
    labels,
    depth: Math.max(axisY, ...ys) - axisY,
    overflowLeft: Math.max(0, -Math.min(0, ...xs)),
    fontSize,
  };
}

function anyOverlap(labels: PlacedLabel[]): boolean {
  const shown = labels.filter((l) => l.shown);
  for (let i = 1; i < shown.length; i++) if (boxesOverlap(shown[i - 1].box, shown[i].box)) return true;
  return false;
}

/** True when two convex outlines share interior points (touching edges do not count). */
export function boxesOverlap(a: readonly Point[], b: readonly Point[]): boolean {
  for (const poly of [a, b])
    for (let i = 0; i < poly.length; i++) {
      const [x1, y1] = poly[i];
      const [x2, y2] = poly[(i + 1) % poly.length];
      const nx = y2 - y1;
      const ny = x1 - x2;
      const project = (p: readonly Point[]) => p.map(([x, y]) => x * nx + y * ny);
      const pa = project(a);
      const pb = project(b);
      if (Math.max(...pa) <= Math.min(...pb) + 1e-6 || Math.max(...pb) <= Math.min(...pa) + 1e-6) return false;
    }
  return true;
}

/** SVG for the shown labels. */
export function labelsSvg(layout: XLabelLayout, esc: (s: string) => string): string {
  const fs = layout.fontSize;
  return layout.labels
    .filter((l) => l.shown)
    .map((l) => {
      if (l.angle === 0) {
        const spans = l.lines
          .map((line, i) => `<tspan x="${l.x.toFixed(1)}" dy="${i ? fs * LINE_HEIGHT : fs * 0.9}">${esc(line)}</tspan>`)
          .join("");
        return `<text class="xl" y="${l.y.toFixed(1)}" text-anchor="middle">${spans}</text>`;
      }
      return `<text class="xl" transform="translate(${l.x.toFixed(1)} ${l.y.toFixed(1)}) rotate(${l.angle})" text-anchor="end">${esc(l.text)}</text>`;
    })
    .join("");
}
