/**
 * Perplexity and KL divergence, checked against llama.cpp (node-llama-cpp 3.21.1): the same
 * chunks of the real TinyStories validation text, scored from llama.cpp's own next-token
 * distributions at every position, must give the same perplexity, and the KL divergence of
 * stories260K Q8_0 against F32 computed from llama.cpp's distributions must match ours.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, perplexity, type Model } from '../../src/index.js';
import { llamaLogProbs as llamaRefLogProbs, logSoftmax, useLlamaCpp } from '../parity/llamacpp-ref.js';

const root = path.resolve(__dirname, '../..');
const shared = path.resolve(root, '../shared');
const F32 = path.join(shared, 'models/stories260K-f32.gguf');
const Q8 = path.join(shared, 'models/stories260K-q8_0.gguf');
const VALID = path.join(shared, 'text/tinystories-valid-b.txt');
const CTX = 128;
const CHUNKS = 3;

const llama = useLlamaCpp();
let f32: Model;
let q8: Model;
let text: string;
beforeAll(async () => {
  f32 = await loadModel(F32, { threads: 2 });
  q8 = await loadModel(Q8, { threads: 2 });
  text = fs.readFileSync(VALID, 'utf8');
});
afterAll(async () => {
  f32?.dispose();
  q8?.dispose();
});

/** llama.cpp's log-probabilities after every position of each chunk (flash attention off, as our default). */
function llamaLogProbs(file: string, chunks: number[][], vocab: number): Promise<Float64Array[][]> {
  return llamaRefLogProbs(llama(), file, chunks, vocab, { contextSize: CTX, flashAttention: false });
}

/** The chunks llama-perplexity scores: BOS-first tokenization, cut in CTX tokens, each chunk's first token set to BOS. */
function chunksOf(model: Model): number[][] {
  const tokens = model.tokenizer.tokenize(text, { addSpecial: true });
  const out: number[][] = [];
  for (let c = 0; c < CHUNKS; c++) {
    const chunk = tokens.slice(c * CTX, (c + 1) * CTX);
    chunk[0] = model.tokenizer.special.bos!;
    out.push(chunk);
  }
  return out;
}

describe('perplexity', () => {
  it('equals the perplexity computed from llama.cpp distributions on the same chunks (F32 and Q8_0)', async () => {
    for (const [file, model] of [[F32, f32], [Q8, q8]] as const) {
      const chunks = chunksOf(model);
      const ref = await llamaLogProbs(file, chunks, model.info.vocabSize);
      let nll = 0;
      let count = 0;
      for (let c = 0; c < CHUNKS; c++)
        for (let j = CTX / 2; j < CTX - 1; j++) {
          nll -= ref[c]![j]![chunks[c]![j + 1]!]!;
          count++;
        }
      const expected = Math.exp(nll / count);
      const r = await perplexity(model, text, { contextSize: CTX, maxChunks: CHUNKS });
      console.log(`${path.basename(file)}: ours ${r.perplexity.toFixed(6)}, llama.cpp ${expected.toFixed(6)}`);
      expect(r.chunks).toBe(CHUNKS);
      expect(r.tokensScored).toBe(count);
      expect(r.running).toHaveLength(CHUNKS);
      expect(r.running[CHUNKS - 1]).toBeCloseTo(r.perplexity, 12);
      expect(Math.abs(r.perplexity / expected - 1)).toBeLessThan(file === F32 ? 1e-4 : 2e-3);
      expect(r.uncertainty).toBeGreaterThan(0);
    }
  });

  it('KL divergence of Q8_0 against F32 matches the one computed from llama.cpp distributions', async () => {
    const chunks = chunksOf(f32);
    const [refF32, refQ8] = [await llamaLogProbs(F32, chunks, 512), await llamaLogProbs(Q8, chunks, 512)];
    let kl = 0;
    let n = 0;
    for (let c = 0; c < CHUNKS; c++)
      for (let j = CTX / 2; j < CTX - 1; j++) {
        const b = refF32[c]![j]!;
        const m = refQ8[c]![j]!;
        let d = 0;
        for (let i = 0; i < 512; i++) if (Number.isFinite(b[i]!)) d += Math.exp(b[i]!) * (b[i]! - m[i]!);
        kl += d;
        n++;
      }
    const expected = kl / n;
    const r = await perplexity(q8, text, { contextSize: CTX, maxChunks: CHUNKS, base: f32 });
    console.log(`KL(F32 || Q8_0): ours ${r.kl!.mean.toExponential(4)}, llama.cpp ${expected.toExponential(4)}`);
    expect(r.kl!.mean).toBeGreaterThan(0);
    // Both engines measure the same small difference, but each one's Q8_0 run has its own
    // 8-bit rounding events (see test/parity/llamacpp.test.ts), of the size of what KL
    // measures here: the two means agree to within a quarter (measured: 12.5% apart).
    expect(Math.abs(r.kl!.mean / expected - 1)).toBeLessThan(0.25);
    // The arithmetic, exactly: KL recomputed from our two engines' raw logits of the same chunks.
    let ours = 0;
    for (const chunk of chunks) {
      const a = f32.createSession({ contextSize: CTX });
      const b = q8.createSession({ contextSize: CTX });
      const [la, lb] = [await a.evaluate(chunk, { allLogits: true }), await b.evaluate(chunk, { allLogits: true })];
      a.dispose();
      b.dispose();
      for (let j = CTX / 2; j < CTX - 1; j++) {
        const lsa = logSoftmax(la.subarray(j * 512, (j + 1) * 512));
        const lsb = logSoftmax(lb.subarray(j * 512, (j + 1) * 512));
        let d = 0;
        for (let i = 0; i < 512; i++) d += Math.exp(lsa[i]!) * (lsa[i]! - lsb[i]!);
        ours += d;
      }
    }
    expect(r.kl!.mean).toBeCloseTo(ours / n, 9);
    expect(r.kl!.top1Agreement).toBeGreaterThan(0.9);
    expect(r.kl!.top1Agreement).toBeLessThanOrEqual(1);
    expect(r.kl!.median).toBeLessThanOrEqual(r.kl!.p99);
    expect(r.kl!.p99).toBeLessThanOrEqual(r.kl!.max);
    // Against itself: exactly zero, every top token the same.
    const self = await perplexity(f32, text, { contextSize: CTX, maxChunks: 1, base: f32 });
    expect(self.kl!.mean).toBe(0);
    expect(self.kl!.top1Agreement).toBe(1);
  });

  it('rejects bad options with clear errors', async () => {
    await expect(perplexity(f32, 'too short', { contextSize: CTX })).rejects.toThrow(/fewer than one chunk/);
    await expect(perplexity(f32, text, { contextSize: 2 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(perplexity(f32, text, { contextSize: 100000 })).rejects.toThrow(/contextSize must be an integer from 4 to 512/);
    await expect(perplexity(f32, text, { maxChunks: 0 })).rejects.toThrow(/maxChunks/);
    await expect(perplexity(f32, 42 as never)).rejects.toThrow(/text must be a string/);
    const aborted = AbortSignal.abort();
    await expect(perplexity(f32, text, { contextSize: CTX, signal: aborted })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('sparrow perplexity prints the result, and one line for a bad invocation', () => {
    const bin = path.join(root, 'bin/sparrow.mjs');
    const run = (...a: string[]) => spawnSync(process.execPath, [bin, 'perplexity', ...a], { encoding: 'utf8' });
    const ok = run(Q8, '--text', VALID, '--ctx', String(CTX), '--chunks', '2', '--kl-divergence', '--base', F32, '--json');
    expect(ok.status, ok.stderr).toBe(0);
    const j = JSON.parse(ok.stdout);
    expect(j.chunks).toBe(2);
    expect(j.perplexity).toBeGreaterThan(1);
    expect(j.kl.top1Agreement).toBeGreaterThan(0.9);
    const missing = run(F32);
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim().split('\n')[0]).toMatch(/--text FILE is required/);
    const badFile = run(F32, '--text', path.join(shared, 'no-such-file.txt'));
    expect(badFile.status).toBe(1);
    expect(badFile.stderr).toMatch(/cannot read --text/);
  });
});
