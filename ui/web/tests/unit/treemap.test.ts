import { describe, expect, it } from 'vitest';
import { squarify } from '../../src/treemap';

const area = (t: { width: number; height: number }) => t.width * t.height;

describe('squarify', () => {
  it('gives areas proportional to sizes', () => {
    const sizes = [6, 6, 4, 3, 2, 2, 1];
    const tiles = squarify(sizes, (s) => s, 6, 4);
    expect(tiles).toHaveLength(sizes.length);
    for (const tile of tiles) expect(area(tile)).toBeCloseTo(tile.item, 6);
  });

  it('keeps tiles inside the rectangle without overlap', () => {
    const sizes = [50, 20, 10, 10, 5, 3, 1, 1];
    const tiles = squarify(sizes, (s) => s, 300, 100);
    for (const t of tiles) {
      expect(t.x).toBeGreaterThanOrEqual(-1e-9);
      expect(t.y).toBeGreaterThanOrEqual(-1e-9);
      expect(t.x + t.width).toBeLessThanOrEqual(300 + 1e-9);
      expect(t.y + t.height).toBeLessThanOrEqual(100 + 1e-9);
    }
    for (let i = 0; i < tiles.length; i++) {
      for (let j = i + 1; j < tiles.length; j++) {
        const a = tiles[i];
        const b = tiles[j];
        const overlapX = Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x);
        const overlapY = Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y);
        expect(overlapX <= 1e-9 || overlapY <= 1e-9).toBe(true);
      }
    }
    const total = tiles.reduce((sum, t) => sum + area(t), 0);
    expect(total).toBeCloseTo(300 * 100, 6);
  });

  it('skips empty records and empty rectangles', () => {
    expect(squarify([0, 0], (s) => s, 10, 10)).toEqual([]);
    expect(squarify([1, 0], (s) => s, 10, 10)).toHaveLength(1);
    expect(squarify([1], (s) => s, 0, 10)).toEqual([]);
  });
});
