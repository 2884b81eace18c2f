/** The CLI's progress bar: drawn on a terminal only, one line redrawn in place, cleared at the end. */
import { describe, expect, it } from 'vitest';
import { progressBar } from '../../src/cli/progress.js';

function fakeStream(tty: boolean) {
  const writes: string[] = [];
  const stream = { isTTY: tty, columns: 100, write: (s: string) => (writes.push(s), true) } as unknown as NodeJS.WriteStream;
  return { stream, writes };
}

describe('progressBar', () => {
  it('on a terminal: a bar with the percentage (and bytes), redrawn in place, cleared by done()', () => {
    const { stream, writes } = fakeStream(true);
    const bar = progressBar('model.gguf', { bytes: true, stream });
    bar.update(0.5, 3 * 2 ** 20, 6 * 2 ** 20);
    expect(writes).toHaveLength(1);
    expect(writes[0]).toMatch(/^\r\x1b\[Kmodel\.gguf \[#+\.+\]  50% 3\.0\/6\.0 MiB/);
    const bar50 = /\[(#+)(\.+)\]/.exec(writes[0]!)!;
    expect(bar50[1]!.length).toBe(bar50[2]!.length);
    bar.update(0.6); // within the redraw interval: skipped
    expect(writes).toHaveLength(1);
    bar.update(1, 6 * 2 ** 20, 6 * 2 ** 20); // the end is always drawn
    expect(writes[1]).toMatch(/\[#+\] 100%/);
    bar.done('done');
    expect(writes.slice(2)).toEqual(['\r\x1b[K', 'done\n']);
  });

  it('not a terminal: draws nothing (stdout and logs stay clean), done() prints only its message', () => {
    const { stream, writes } = fakeStream(false);
    const bar = progressBar('loading model', { stream });
    for (let i = 0; i <= 10; i++) bar.update(i / 10);
    bar.done();
    expect(writes).toEqual([]);
    bar.done('finished');
    expect(writes).toEqual(['finished\n']);
  });
});
