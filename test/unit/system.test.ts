import { describe, expect, it } from 'vitest';
import { setIsa, systemInfo, SparrowError } from '../../src/index.js';
import { internal } from '../../src/native.js';

describe('systemInfo / setIsa', () => {
  it('reports the best supported path as the default', () => {
    const info = systemInfo();
    expect(info.supportedIsas).toContain('generic');
    expect(info.supportedIsas).toContain(info.bestIsa);
    for (const isa of info.supportedIsas) expect(info.compiledIsas).toContain(isa);
  });

  it('forces each supported path and refuses unknown ones', () => {
    const info = systemInfo();
    for (const isa of info.supportedIsas) {
      setIsa(isa);
      expect(systemInfo().isa).toBe(isa);
    }
    setIsa(info.bestIsa);
    expect(() => setIsa('sse9' as never)).toThrow(SparrowError);
    const missing = (['avx2', 'avx512', 'neon'] as const).find((i) => !info.supportedIsas.includes(i));
    if (missing) expect(() => setIsa(missing)).toThrow(/cannot run on this CPU|not in this build/);
  });
});

describe('dot_f32 kernels agree with the reference on awkward sizes', () => {
  const dot = internal<{ _dotF32(isa: string, a: Float32Array, b: Float32Array): number }>()._dotF32;
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  for (const isa of systemInfo().supportedIsas) {
    it(isa, () => {
      for (const n of [0, 1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 100, 257, 1000, 4099]) {
        const a = Float32Array.from({ length: n }, rand);
        const b = Float32Array.from({ length: n }, rand);
        let ref = 0;
        for (let i = 0; i < n; i++) ref += a[i] * b[i];
        const got = dot(isa, a, b);
        expect(Math.abs(got - ref)).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.sqrt(n)));
        expect(got).toBeCloseTo(dot('generic', a, b), 4);
      }
    });
  }
});
