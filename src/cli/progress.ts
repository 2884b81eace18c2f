/**
 * A one-line progress bar on stderr, drawn only when stderr is a terminal (stdout stays
 * clean for the command's own output). `bytes` adds "12.3/45.6 MiB" and a rate.
 */
export interface ProgressBar {
  update(fraction: number, done?: number, total?: number): void;
  /** Clears the line (a terminal) and optionally prints a closing message. */
  done(message?: string): void;
}

const MiB = 2 ** 20;

export function progressBar(label: string, options: { bytes?: boolean; stream?: NodeJS.WriteStream } = {}): ProgressBar {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  const t0 = performance.now();
  let last = -Infinity;
  let drawn = false;
  return {
    update(fraction, done, total) {
      if (!tty) return;
      const now = performance.now();
      const f = Math.max(0, Math.min(1, Number.isFinite(fraction) ? fraction : 0));
      if (now - last < 80 && f < 1) return;
      last = now;
      const width = Math.max(10, Math.min(30, (stream.columns ?? 80) - label.length - 40));
      const fill = Math.round(f * width);
      let tail = `${(f * 100).toFixed(0).padStart(3)}%`;
      if (options.bytes && done !== undefined) {
        const secs = (now - t0) / 1000;
        const rate = secs > 0.2 ? ` ${(done / MiB / secs).toFixed(1)} MiB/s` : '';
        tail += ` ${(done / MiB).toFixed(1)}${total ? `/${(total / MiB).toFixed(1)}` : ''} MiB${rate}`;
      }
      stream.write(`\r\x1b[K${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${tail}`);
      drawn = true;
    },
    done(message) {
      if (tty && drawn) stream.write('\r\x1b[K');
      if (message) stream.write(message + '\n');
    },
  };
}
