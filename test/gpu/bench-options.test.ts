// `npx bench --gpu vulkan`: the option (the run itself is the lead's smoke step on lavapipe).
import { describe, expect, it } from 'vitest';
import { parseBenchArgs, type BenchOptions } from '../../bench/options.js';

describe('bench --gpu', () => {
  it('defaults to the CPU, takes vulkan, refuses anything else', () => {
    expect((parseBenchArgs([]) as BenchOptions).gpu).toBe(false);
    expect((parseBenchArgs(['--gpu', 'vulkan', '--quick']) as BenchOptions).gpu).toBe('vulkan');
    expect((parseBenchArgs(['--gpu', 'Vulkan']) as BenchOptions).gpu).toBe('vulkan');
    expect(() => parseBenchArgs(['--gpu', 'cuda'])).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    // Sparse models run on the CPU only.
    expect(() => parseBenchArgs(['--gpu', 'vulkan', '--sparsity', '0,0.3'])).toThrow(/--sparsity runs on the CPU only/);
    expect((parseBenchArgs(['--sparsity', '0,0.3']) as BenchOptions).sparsity).toEqual([0, 0.3]);
  });
});
