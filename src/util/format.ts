/** Human formats of sizes, durations, rates and copy progress. */

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];

/** `1634000000` → `1.63 GB` (decimal units, as disk and network tools print). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '? B';
  let n = bytes;
  let u = 0;
  while (n >= 1000 && u < UNITS.length - 1) {
    n /= 1000;
    u++;
  }
  if (u === 0) return `${Math.round(n)} B`;
  return `${n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2)} ${UNITS[u]}`;
}

/** `850` → `850ms`, `12300` → `12.3s`, `245000` → `4m05s`, `3725000` → `1h02m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const m = Math.floor(s / 60);
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** Bytes per second over `ms`; 0 when no time passed. */
export function rate(bytes: number, ms: number): number {
  return ms > 0 ? (bytes * 1000) / ms : 0;
}

/** `33.3 MB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/**
 * One progress line for a long copy:
 * `812 MB / 1.63 GB (49%) · 67.7 MB/s · ETA 12s`, or without a total
 * `812 MB · 67.7 MB/s · 12.0s`.
 */
export function formatProgress(
  bytes: number,
  total: number | undefined,
  startedAt: number,
  now: number = Date.now(),
): string {
  const elapsed = Math.max(0, now - startedAt);
  const r = rate(bytes, elapsed);
  const speed = elapsed > 0 ? formatRate(r) : '– MB/s';
  if (total === undefined || total <= 0) {
    return `${formatBytes(bytes)} · ${speed} · ${formatDuration(elapsed)}`;
  }
  const pct = Math.min(100, Math.floor((bytes / total) * 100));
  const left = Math.max(0, total - bytes);
  const eta = left === 0 ? 'done' : r > 0 ? `ETA ${formatDuration((left / r) * 1000)}` : 'ETA ?';
  return `${formatBytes(bytes)} / ${formatBytes(total)} (${pct}%) · ${speed} · ${eta}`;
}
