// Determinism: the logits are bit-identical whatever the thread count, however a prompt is
// cut into batches (batchSize) and whether a decode step runs alone or batched with other
// sessions' steps, for several model shapes and weight types.
//
// flashAttention: true follows llama.cpp's flash attention, which takes another route
// (exact f32 tiles) for a batch holding 64 or more tokens of one sequence: its logits are
// bit-identical across threads, batching, and batch sizes below 64, and checked so here.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticModel } from '../../models/cache.js';
import type { MixName } from '../../models/synthetic.js';
import { loadModel, type Model } from '../../src/model.js';

const MODELS = path.resolve('../shared/models');

interface Case {
  name: string;
  file: () => Promise<string>;
}
const synthetic = (name: string, mix: MixName): Case => ({ name: `${name} ${mix}`, file: () => syntheticModel(name, mix) });
const CASES: Case[] = [
  { name: 'stories260K f32', file: async () => path.join(MODELS, 'stories260K-f32.gguf') },
  synthetic('tiny-mha', 'f16'),
  synthetic('tiny-gqa8-tied', 'bf16'),
  synthetic('tiny-gqa4-hd128', 'q8_0'),
  synthetic('tiny-qwen2', 'q4_0'),
  synthetic('tiny-gqa3', 'q4_k_m'),
  synthetic('tiny-qwen2-576', 'q6_k'),
  // The other architectures: per-head norms, sliding windows and soft caps, fused tensors
  // and LongRoPE, and experts grouped per batch (which tokens share an expert changes with
  // the batching; their results must not).
  synthetic('tiny-qwen3', 'q4_k_m'),
  synthetic('tiny-gemma2', 'q8_0'),
  synthetic('tiny-gemma3', 'f16'),
  synthetic('tiny-phi3', 'q4_0'),
  synthetic('tiny-qwen3moe', 'q8_0'),
  synthetic('tiny-mixtral', 'q4_k_m'),
  // gpt-oss: sinks, alternating windows, YaRN, experts with biases, MXFP4 experts.
  synthetic('tiny-gpt-oss', 'mxfp4'),
];

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const ua = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const ub = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return false;
  return true;
}

/** Names the first differing step of two runs, or '' when all bits agree. */
function firstDifference(a: Float32Array[], b: Float32Array[]): string {
  for (let i = 0; i < Math.max(a.length, b.length); i++) if (!a[i] || !b[i] || !sameBits(a[i], b[i])) return `step ${i}`;
  return '';
}

interface RunOptions {
  flash: boolean;
  kv?: 'f16' | 'q8_0';
}

/** The logits of every prompt token (one evaluate, allLogits), then of three decode steps. */
async function run(model: Model, prompt: number[], steps: number[], o: RunOptions): Promise<Float32Array[]> {
  const s = model.createSession({ contextSize: 256, flashAttention: o.flash, kvCacheType: o.kv ?? 'f16' });
  try {
    const out = [await s.evaluate(prompt, { allLogits: true })];
    for (const t of steps) out.push(await s.evaluate([t]));
    return out;
  } finally {
    s.dispose();
  }
}

for (const c of CASES) {
  describe(`determinism: ${c.name}`, () => {
    const models = new Map<string, Model>();
    let prompt: number[] = [];
    let steps: number[] = [];
    const get = (threads: number, batchSize: number) => models.get(`${threads}/${batchSize}`)!;
    beforeAll(async () => {
      const file = await c.file();
      for (const [threads, batchSize] of [[1, 512], [2, 512], [2, 7], [2, 1], [1, 7]])
        models.set(`${threads}/${batchSize}`, await loadModel(file, { threads, batchSize }));
      const vocab = get(2, 512).info.vocabSize;
      // 70 tokens: more than 64, so a 512 batch holds them all and a 7 batch cuts them in 10.
      prompt = Array.from({ length: 70 }, (_, i) => 1 + ((i * 37 + 11) % (vocab - 2)));
      steps = [3, 5 % vocab, 7 % vocab];
    }, 300_000);
    afterAll(() => {
      for (const m of models.values()) m.dispose();
    });

    it('q8_0 KV cache: threads 1 and 2, batchSize 7, 1 and 512 give the same bits', async (ctx) => {
      if (get(2, 512).info.headDim % 32 !== 0) ctx.skip(); // q8_0 rows need whole blocks of 32
      const o = { flash: false, kv: 'q8_0' as const };
      const want = await run(get(2, 512), prompt, steps, o);
      for (const [t, b] of [[1, 512], [2, 7], [1, 7], [2, 1]])
        expect(firstDifference(await run(get(t, b), prompt, steps, o), want), `threads ${t}, batchSize ${b}`).toBe('');
    });

    for (const flash of [false, true]) {
      const route = flash ? 'flash attention' : 'default attention';
      it(`${route}: threads 1 and 2 give the same bits (batchSize 512 and 7)`, async () => {
        expect(firstDifference(await run(get(1, 512), prompt, steps, { flash }), await run(get(2, 512), prompt, steps, { flash }))).toBe('');
        expect(firstDifference(await run(get(1, 7), prompt, steps, { flash }), await run(get(2, 7), prompt, steps, { flash }))).toBe('');
      });
      it(`${route}: batchSize 7 and 1 give the same bits${flash ? '' : ', and 512 too'}`, async () => {
        const b7 = await run(get(2, 7), prompt, steps, { flash });
        expect(firstDifference(b7, await run(get(2, 1), prompt, steps, { flash }))).toBe('');
        if (!flash) expect(firstDifference(b7, await run(get(2, 512), prompt, steps, { flash }))).toBe('');
      });
      it(`${route}: decode steps batched with another session's give the bits of the steps alone`, async () => {
        const m = get(2, 512);
        const want = await run(m, prompt, steps, { flash });
        const a = m.createSession({ contextSize: 256, flashAttention: flash });
        const b = m.createSession({ contextSize: 256, flashAttention: flash });
        try {
          const got = [(await Promise.all([a.evaluate(prompt, { allLogits: true }), b.evaluate(prompt.slice(0, 9))]))[0]];
          const before = m.stats.batchedSteps;
          for (const t of steps) got.push((await Promise.all([a.evaluate([t]), b.evaluate([t])]))[0]);
          expect(m.stats.batchedSteps).toBeGreaterThan(before); // they did run together
          expect(firstDifference(got, want)).toBe('');
        } finally {
          a.dispose();
          b.dispose();
        }
      });
    }
  });
}
