/** A bench child that dies before reporting is reported with its own error (its stderr's error line). */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { childError } from '../../bench/main.js';

describe('childError', () => {
  it("picks a real child's ERR_MODULE_NOT_FOUND line out of its stderr", () => {
    // What a child sees when a dependency of the bench is missing (tinybench was a devDependency).
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', "import 'tinybench-that-is-not-installed';"], { encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    const line = childError(r.stderr);
    expect(line).toMatch(/ERR_MODULE_NOT_FOUND|Cannot find package/);
    expect(line).toContain('tinybench-that-is-not-installed');
    expect(line.split('\n')).toHaveLength(1);
  });

  it('takes a thrown error, else the last line; never more than 500 characters', () => {
    const r = spawnSync(process.execPath, ['-e', "console.error('loading...'); throw new RangeError('bad size 42')"], { encoding: 'utf8' });
    expect(childError(r.stderr)).toBe('RangeError: bad size 42');
    expect(childError('something\nwent wrong here\n\n')).toBe('went wrong here');
    expect(childError('')).toBe('');
    expect(childError('Error: ' + 'x'.repeat(2000)).length).toBe(500);
  });
});
