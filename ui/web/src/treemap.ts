// Squarified treemap layout (Bruls, Huizing and van Wijk, 2000): places
// items with areas proportional to their sizes in a rectangle, keeping the
// tiles close to square so small records stay clickable.

export interface Tile<T> {
  item: T;
  x: number;
  y: number;
  width: number;
  height: number;
}

interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Lays out `items` by `size(item)` in a `width` × `height` rectangle; items of size 0 get no tile. */
export function squarify<T>(items: T[], size: (item: T) => number, width: number, height: number): Tile<T>[] {
  const positive = items.filter((item) => size(item) > 0).sort((a, b) => size(b) - size(a));
  const total = positive.reduce((sum, item) => sum + size(item), 0);
  if (!total || width <= 0 || height <= 0) return [];
  const scale = (width * height) / total;
  const areas = positive.map((item) => ({ item, area: size(item) * scale }));
  const tiles: Tile<T>[] = [];
  let rect: Rect = { x: 0, y: 0, width, height };
  let row: { item: T; area: number }[] = [];
  for (const entry of areas) {
    const side = Math.min(rect.width, rect.height);
    if (row.length && worst([...row, entry], side) > worst(row, side)) {
      rect = placeRow(row, rect, tiles);
      row = [];
    }
    row.push(entry);
  }
  if (row.length) placeRow(row, rect, tiles);
  return tiles;
}

/** The largest aspect ratio in a row laid along a side of length `side`. */
function worst(row: { area: number }[], side: number): number {
  const sum = row.reduce((total, entry) => total + entry.area, 0);
  const max = Math.max(...row.map((entry) => entry.area));
  const min = Math.min(...row.map((entry) => entry.area));
  const squared = side * side;
  return Math.max((squared * max) / (sum * sum), (sum * sum) / (squared * min));
}

/** Places a row along the rectangle's shorter side and returns the space left. */
function placeRow<T>(row: { item: T; area: number }[], rect: Rect, tiles: Tile<T>[]): Rect {
  const sum = row.reduce((total, entry) => total + entry.area, 0);
  if (rect.width >= rect.height) {
    const columnWidth = sum / rect.height;
    let y = rect.y;
    for (const entry of row) {
      const height = entry.area / columnWidth;
      tiles.push({ item: entry.item, x: rect.x, y, width: columnWidth, height });
      y += height;
    }
    return { x: rect.x + columnWidth, y: rect.y, width: rect.width - columnWidth, height: rect.height };
  }
  const rowHeight = sum / rect.width;
  let x = rect.x;
  for (const entry of row) {
    const width = entry.area / rowHeight;
    tiles.push({ item: entry.item, x, y: rect.y, width, height: rowHeight });
    x += width;
  }
  return { x: rect.x, y: rect.y + rowHeight, width: rect.width, height: rect.height - rowHeight };
}
