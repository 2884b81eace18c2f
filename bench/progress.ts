/**
 * A progress bar on stderr (stdout stays clean for --json). On a terminal it redraws one
 * line; elsewhere (CI logs) it prints a line every 25%.
 */
export interface Progress {
  update(done: number, total: number): void;
  done(message?: string): void;
}

const MiB = 2 ** 20;

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = stream.isTTY === true;
  let lastQuarter = -1;
  let lastDraw = 0;
  const t0 = performance.now();
  return {
    update(done, total) {
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      if (tty) {
        const now = performance.now();
        if (now - lastDraw < 100 && frac < 1) return;
        lastDraw = now;
        const width = 30;
        const fill = Math.round(frac * width);
        stream.write(
          `\r${label} [${'#'.repeat(fill)}${' '.repeat(width - fill)}] ${(frac * 100).toFixed(0).padStart(3)}% ` +
            `${(done / MiB).toFixed(0)}/${(total / MiB).toFixed(0)} MiB`,
        );
      } else {
        const q = Math.floor(frac * 4);
        if (q > lastQuarter) {
          lastQuarter = q;
          stream.write(`${label}: ${q * 25}% of ${(total / MiB).toFixed(0)} MiB\n`);
        }
      }
    },
    done(message) {
      const s = ((performance.now() - t0) / 1000).toFixed(1);
      stream.write(`${tty ? '\r\x1b[K' : ''}${label}: ${message ?? 'done'} (${s} s)\n`);
    },
  };
}
