// Whole models on the Vulkan backend through the public API: device choice (gpu 'auto' |
// 'vulkan' | false, gpuDevice), stories260K F32's greedy reference ids (llama.cpp's, see
// ../shared/models/PROVENANCE.md), logits of every architecture and the usual weight mixes
// against the CPU backend within a per-type tolerance, and sessions (batching, save and
// restore, context shift, dispose) on the device.
// Runs where a Vulkan device exists (lavapipe in CI); skips, saying why, elsewhere.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { syntheticModel } from '../../models/cache.js';
import type { ModelShape, MixName } from '../../models/synthetic.js';
import { loadModel, systemInfo, type Model } from '../../src/index.js';

const info = systemInfo();
const skipReason = info.gpus.length === 0 ? `no Vulkan device: ${info.gpuUnavailableReason ?? 'unknown reason'}` : undefined;
if (skipReason) console.log(`test/gpu/model.test.ts skipped: ${skipReason}`);

const MODELS = path.resolve(__dirname, '../../../shared/models');
const haveModels = fs.existsSync(path.join(MODELS, 'stories260K-f32.gguf'));
if (!skipReason && !haveModels) console.log(`test/gpu/model.test.ts: stories260K tests skipped: ${MODELS} is missing`);

const loaded: Model[] = [];
afterAll(() => {
  for (const m of loaded) m.dispose();
});
async function load(file: string, gpu: 'auto' | 'vulkan' | false, extra: Record<string, unknown> = {}): Promise<Model> {
  const m = await loadModel(file, { gpu, threads: 2, ...extra });
  loaded.push(m);
  return m;
}

function argmax(a: Float32Array): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

/** Logits of a prompt and then `steps` greedy decode steps (the CPU's choices fed to both). */
async function trace(m: Model, prompt: Int32Array, tokens: number[]): Promise<Float32Array[]> {
  const s = m.createSession({ contextSize: 128 });
  const out = [await s.evaluate(prompt)];
  for (const t of tokens) out.push(await s.evaluate(Int32Array.from([t])));
  s.dispose();
  return out;
}

function expectSameBits(a: Float32Array, b: Float32Array) {
  expect(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))).toBe(true);
}

function maxDiff(a: Float32Array[], b: Float32Array[]): { diff: number; scale: number } {
  let diff = 0,
    scale = 0;
  a.forEach((x, i) => {
    for (let j = 0; j < x.length; j++) {
      diff = Math.max(diff, Math.abs(x[j] - b[i][j]));
      scale = Math.max(scale, Math.abs(b[i][j]));
    }
  });
  return { diff, scale };
}

describe.skipIf(skipReason !== undefined)('models on the Vulkan backend', () => {
  it('systemInfo().gpus describes every device', () => {
    expect(info.vulkan).toBe(true);
    for (const [i, g] of info.gpus.entries()) {
      expect(g.index).toBe(i);
      expect(g.api).toBe('vulkan');
      expect(g.name.length).toBeGreaterThan(0);
      expect(['discrete', 'integrated', 'virtual', 'cpu', 'other']).toContain(g.type);
      expect(g.memory).toBeGreaterThan(0);
      expect(g.maxBufferSize).toBeGreaterThan(0);
      expect(Array.isArray(g.features)).toBe(true);
    }
  });

  it('`sparrow info` lists the GPU devices', () => {
    const out = execFileSync(process.execPath, [path.resolve(__dirname, '../../bin/sparrow.mjs'), 'info'], { encoding: 'utf8' });
    for (const g of info.gpus) expect(out).toContain(`gpu ${g.index}:      ${g.name} (vulkan, ${g.type}`);
  });

  it.skipIf(!haveModels)('device choice: auto skips CPU-type devices, vulkan takes any, false is the CPU; bad options are clear errors', async () => {
    const file = path.join(MODELS, 'stories260K-f32.gguf');
    const real = info.gpus.find((g) => g.type !== 'cpu');
    const auto = await load(file, 'auto');
    if (real) expect(auto.info.gpu?.name).toBe(real.name);
    else expect(auto.info.gpu).toBeNull();
    const vk = await load(file, 'vulkan');
    expect(vk.info.gpu).toMatchObject({ api: 'vulkan', index: real ? real.index : 0 });
    expect((await load(file, false)).info.gpu).toBeNull();
    const last = info.gpus[info.gpus.length - 1];
    expect((await load(file, 'vulkan', { gpuDevice: last.index })).info.gpu?.name).toBe(last.name);
    await expect(loadModel(file, { gpu: 'vulkan', gpuDevice: info.gpus.length })).rejects.toMatchObject({ code: 'ERR_NO_GPU' });
    await expect(loadModel(file, { gpu: 'cuda' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
    await expect(loadModel(file, { gpuDevice: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' });
  });

  it.skipIf(!haveModels)('where the Vulkan loader finds no driver: no GPUs and the reason, auto runs on the CPU, vulkan is ERR_NO_GPU', () => {
    const script = `
      import { loadModel, systemInfo } from ${JSON.stringify(path.resolve(__dirname, '../../dist/src/index.js'))};
      const si = systemInfo();
      const m = await loadModel(${JSON.stringify(path.join(MODELS, 'stories260K-f32.gguf'))});
      const err = await loadModel(${JSON.stringify(path.join(MODELS, 'stories260K-f32.gguf'))}, { gpu: 'vulkan' }).catch((e) => e);
      console.log(JSON.stringify({ gpus: si.gpus.length, vulkan: si.vulkan, why: si.gpuUnavailableReason, gpu: m.info.gpu, code: err.code, message: err.message }));
      m.dispose();`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, VK_ICD_FILENAMES: '/nonexistent/icd.json', VK_DRIVER_FILES: '/nonexistent/icd.json' },
    });
    const r = JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>;
    expect(r).toMatchObject({ gpus: 0, vulkan: true, gpu: null, code: 'ERR_NO_GPU' });
    expect(String(r.why)).toMatch(/no Vulkan driver|no device/);
    expect(String(r.message)).toContain(String(r.why));
  });

  it.skipIf(!haveModels)('a model larger than the device memory is a clear error naming both sizes', async () => {
    process.env.SPARROW_VULKAN_MAX_MEMORY = String(64 * 1024);
    try {
      const err = await loadModel(path.join(MODELS, 'stories260K-f32.gguf'), { gpu: 'vulkan' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_GPU_OUT_OF_MEMORY' });
      expect((err as Error).message).toMatch(/weights need [\d.]+ MiB of device memory, but .* has 0\.1 MiB/);
    } finally {
      delete process.env.SPARROW_VULKAN_MAX_MEMORY;
    }
    // The process stays healthy: the same file loads afterwards.
    expect((await load(path.join(MODELS, 'stories260K-f32.gguf'), 'vulkan')).info.gpu).not.toBeNull();
  });

  it.skipIf(!haveModels)('stories260K F32 reproduces its greedy reference ids', async () => {
    const ref = JSON.parse(fs.readFileSync(path.join(MODELS, 'reference_outputs.json'), 'utf8')) as {
      models: Record<string, { promptTokens: number[]; outTokens: number[] }[]>;
    };
    const m = await load(path.join(MODELS, 'stories260K-f32.gguf'), 'vulkan');
    expect(m.info.gpu).not.toBeNull();
    for (const c of ref.models["stories260K-f32.gguf"].slice(0, 2)) {
      const s = m.createSession({ contextSize: 256 });
      let logits = await s.evaluate(Int32Array.from(c.promptTokens));
      const out: number[] = [];
      for (let i = 0; i < c.outTokens.length; i++) {
        out.push(argmax(logits));
        if (i + 1 < c.outTokens.length) logits = await s.evaluate(Int32Array.from([out[i]]));
      }
      expect(out).toEqual(c.outTokens);
      s.dispose();
    }
  });

  // Tolerance: the largest logit difference over the largest |logit| of the CPU's. The CPU
  // multiplies quantized weights with 8-bit activations where the device keeps f32 ones,
  // and its attention rounds the probabilities to f16 (the device keeps them f32).
  const TOL: Record<string, number> = {
    f32: 2e-3, f16: 5e-3, bf16: 1e-2, q8_0: 3e-2, q4_0: 5e-2, q4_k_m: 5e-2, q5_k_m: 5e-2, q6_k: 5e-2,
    q4_1: 5e-2, q5_0: 5e-2, q5_1: 5e-2, q2_k: 5e-2, q3_k_m: 5e-2, iq4_nl: 5e-2, iq4_xs: 5e-2, mxfp4: 5e-2,
  };

  for (const mix of ['f16', 'q8_0'] as const)
    it.skipIf(!haveModels)(`stories260K ${mix}: logits match the CPU backend`, async () => {
      const file = path.join(MODELS, `stories260K-${mix}.gguf`);
      const cpu = await load(file, false),
        gpu = await load(file, 'vulkan');
      const prompt = Int32Array.from([1, 403, 407, 261, 378, 290, 300]);
      const ref = await trace(cpu, prompt, [432, 383, 286]);
      const { diff, scale } = maxDiff(await trace(gpu, prompt, [432, 383, 286]), ref);
      expect(diff / scale).toBeLessThan(TOL[mix]);
    });

  // Small synthetic files of every architecture the device runs, in the usual mixes.
  const base = { nLayers: 2, nEmbd: 256, nFF: 512, nHead: 4, nHeadKv: 2, nVocab: 512, contextLength: 4096 };
  const CASES: [string, Partial<ModelShape> & { arch: ModelShape['arch'] }, MixName[]][] = [
    ['llama', { arch: 'llama' }, ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k_m', 'q5_k_m', 'q6_k']],
    ['qwen2 (biases)', { arch: 'qwen2', tokenizer: 'gpt2' }, ['q4_0', 'q8_0']],
    ['qwen3 (Q/K norms)', { arch: 'qwen3', tokenizer: 'gpt2', headDim: 128 }, ['q8_0', 'q4_k_m']],
    ['gemma2 (post-norms, soft caps, sliding window)', { arch: 'gemma2', slidingWindow: 8, headDim: 128 }, ['q8_0']],
    ['gemma3 (sliding window, local RoPE base)', { arch: 'gemma3', slidingWindow: 8, headDim: 128 }, ['q4_0']],
    ['phi3 (fused QKV and gate/up, LongRoPE)', { arch: 'phi3', ropeFactors: true, originalContextLength: 64 }, ['q8_0']],
    ['qwen3moe (8 experts, 2 per token)', { arch: 'qwen3moe', tokenizer: 'gpt2', nExpert: 8, nExpertUsed: 2, nFFExp: 128 }, ['q8_0']],
    ['llama Mixtral-style (4 experts, 2 per token)', { arch: 'llama', nExpert: 4, nExpertUsed: 2 }, ['f16']],
    ['more CPU weight types', { arch: 'llama' }, ['q4_1', 'q5_0', 'q5_1', 'q2_k', 'q3_k_m', 'iq4_nl', 'iq4_xs', 'mxfp4']],
  ];
  for (const [name, shape, mixes] of CASES)
    for (const mix of mixes)
      it(`synthetic ${name} ${mix}: logits of a prompt and decode steps match the CPU backend`, async () => {
        const file = await syntheticModel({ name: `vk-${shape.arch}`, shape: { ...base, ...shape } as ModelShape }, mix);
        const cpu = await load(file, false),
          gpu = await load(file, 'vulkan');
        expect(gpu.info.gpu).not.toBeNull();
        const prompt = Int32Array.from({ length: 19 }, (_, i) => (i * 37 + 5) % 500);
        const ref = await trace(cpu, prompt, [7, 100, 250]);
        const { diff, scale } = maxDiff(await trace(gpu, prompt, [7, 100, 250]), ref);
        expect(diff / scale, `max |diff| ${diff} of max |logit| ${scale}`).toBeLessThan(TOL[mix]);
        cpu.dispose();
        gpu.dispose();
      });

  it.skipIf(!haveModels)('sessions: batched decode equals decode alone (bits); save/restore and context shift continue as the CPU', async () => {
    const file = path.join(MODELS, 'stories260K-f32.gguf');
    const m = await load(file, 'vulkan');
    const cpu = await load(file, false);
    const prompt = Int32Array.from([1, 403, 407, 261, 378]);
    // Alone.
    const a = m.createSession({ contextSize: 64 });
    const aloneFirst = await a.evaluate(prompt);
    const aloneNext = await a.evaluate(Int32Array.from([argmax(aloneFirst)]));
    // Three sessions whose decode steps wait together (one batched pass).
    const ss = [0, 1, 2].map(() => m.createSession({ contextSize: 64 }));
    await Promise.all(ss.map((s) => s.evaluate(prompt)));
    const steps = await Promise.all(ss.map((s) => s.evaluate(Int32Array.from([argmax(aloneFirst)]))));
    for (const st of steps) expect(Buffer.from(st.buffer).equals(Buffer.from(aloneNext.buffer))).toBe(true);
    // Save after the prompt, restore into a new session: the same next logits.
    const state = ss[0].save();
    const r = m.createSession({ contextSize: 64 });
    r.restore(state);
    const afterRestore = await r.evaluate(Int32Array.from([argmax(aloneNext)]));
    const cont = await ss[0].evaluate(Int32Array.from([argmax(aloneNext)]));
    expect(Buffer.from(afterRestore.buffer).equals(Buffer.from(cont.buffer))).toBe(true);
    // A CPU session restored from the device's state continues within tolerance.
    const c = cpu.createSession({ contextSize: 64 });
    c.restore(state);
    const onCpu = await c.evaluate(Int32Array.from([argmax(aloneNext)]));
    const { diff, scale } = maxDiff([onCpu], [cont]);
    expect(diff / scale).toBeLessThan(1e-3);
    // Context shift (keys re-rotated on the host cache, the device copy uploaded again).
    const g = m.createSession({ contextSize: 64 }),
      h = cpu.createSession({ contextSize: 64 });
    const long = Int32Array.from({ length: 40 }, (_, i) => (i * 13 + 7) % 500);
    await g.evaluate(long);
    await h.evaluate(long);
    await g.shift(1, 10);
    await h.shift(1, 10);
    const gl = await g.evaluate(Int32Array.from([42])),
      hl = await h.evaluate(Int32Array.from([42]));
    const sh = maxDiff([gl], [hl]);
    expect(sh.diff / sh.scale).toBeLessThan(1e-3);
    for (const s of [a, ...ss, r, c, g, h]) s.dispose();
  });

  it.skipIf(!haveModels)('activation sparsity: a session sparsity on the device matches the CPU; a model loaded with sparsity > 0 is refused', async () => {
    const file = path.join(MODELS, 'stories260K-f32.gguf');
    const err = await loadModel(file, { gpu: 'vulkan', sparsity: 0.3 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_GPU_UNSUPPORTED' });
    expect((err as Error).message).toMatch(/sparsity/);
    const m = await load(file, 'vulkan'),
      cpu = await load(file, false);
    const prompt = Int32Array.from([1, 403, 407, 261, 378]);
    const run = async (model: Model, sparsity: number) => {
      const s = model.createSession({ contextSize: 64, sparsity });
      const out = [await s.evaluate(prompt)];
      for (const t of [432, 383, 286]) out.push(await s.evaluate(Int32Array.from([t])));
      s.dispose();
      return out;
    };
    const g = await run(m, 0.3),
      c = await run(cpu, 0.3),
      dense = await run(m, 0);
    const { diff, scale } = maxDiff(g, c);
    expect(diff / scale).toBeLessThan(2e-3);
    // The decode steps were sparsified (the prompt stays dense).
    expect(maxDiff(g.slice(1), dense.slice(1)).diff).toBeGreaterThan(1e-3);
    expectSameBits(g[0], dense[0]);
  });

  it.skipIf(!haveModels)('a KV cache layer larger than one binding is a clear error; the session stays usable after', async () => {
    const m = await load(path.join(MODELS, 'stories260K-f32.gguf'), 'vulkan');
    process.env.SPARROW_VULKAN_MAX_BUFFER = '4096';  // read when a backend is made: only the next model sees it
    const small = await load(path.join(MODELS, 'stories260K-f32.gguf'), 'vulkan').finally(() => delete process.env.SPARROW_VULKAN_MAX_BUFFER);
    const s = small.createSession({ contextSize: 256 });
    await expect(s.evaluate(Int32Array.from([1, 403]))).rejects.toMatchObject({ code: 'ERR_GPU_UNSUPPORTED' });
    expect((await m.createSession({ contextSize: 256 }).evaluate(Int32Array.from([1, 403]))).length).toBe(m.info.vocabSize);
  });

  it.skipIf(!haveModels)('embeddings (the final hidden state read back) match the CPU backend', async () => {
    const file = path.join(MODELS, 'stories260K-f32.gguf');
    const texts = ['Once upon a time', 'The cat sat on the mat. It was happy.'];
    for (const pooling of ['mean', 'last'] as const) {
      const want = await (await load(file, false)).embed(texts, { pooling });
      const got = await (await load(file, 'vulkan')).embed(texts, { pooling });
      const { diff } = maxDiff(got, want);
      expect(diff).toBeLessThan(1e-3);  // unit vectors
    }
  });

  it.skipIf(!haveModels)('abort: an evaluation aborted mid-prompt leaves the session as it was; the next ones give the same logits as the CPU', async () => {
    const file = path.join(MODELS, 'stories260K-f32.gguf');
    const m = await load(file, 'vulkan'),
      cpu = await load(file, false);
    const s = m.createSession({ contextSize: 256 });
    await s.evaluate(Int32Array.from([1, 403, 407]));
    const ac = new AbortController();
    const p = s.evaluate(Int32Array.from({ length: 200 }, (_, i) => (i * 11 + 2) % 500), { signal: ac.signal });
    ac.abort();
    const outcome = await p.then(
      () => 'finished',
      (e: { code?: string }) => e.code,
    );
    expect(outcome).toBe('ERR_ABORTED');  // aborted before or between its passes
    expect(s.tokens.length).toBe(3);
    const c = cpu.createSession({ contextSize: 256 });
    await c.evaluate(Int32Array.from(s.tokens));
    const want = await c.evaluate(Int32Array.from([261, 378]));
    const got = await s.evaluate(Int32Array.from([261, 378]));
    const { diff, scale } = maxDiff([got], [want]);
    expect(diff / scale).toBeLessThan(1e-3);
  });

  it.skipIf(!haveModels)('dispose: a session disposed mid-prompt (its cache freed with work still recorded) leaves the model healthy', async () => {
    const file = path.join(MODELS, 'stories260K-f32.gguf');
    const m = await load(file, 'vulkan', { batchSize: 16 }),
      cpu = await load(file, false);
    for (let round = 0; round < 3; round++) {
      const s = m.createSession({ contextSize: 256 });
      const p = s.evaluate(Int32Array.from({ length: 150 }, (_, i) => (i * 7 + round) % 500)).catch((e: { code?: string }) => e.code);
      await new Promise((r) => setTimeout(r, 5 + 20 * round));
      s.dispose();
      expect([undefined, 'ERR_DISPOSED', 'ERR_ABORTED', 'ERR_CANCELLED']).toContain(typeof (await p) === 'string' ? await p : undefined);
    }
    const prompt = Int32Array.from([1, 403, 407, 261, 378]);
    const got = await m.createSession({ contextSize: 64 }).evaluate(prompt);
    const want = await cpu.createSession({ contextSize: 64 }).evaluate(prompt);
    const { diff, scale } = maxDiff([got], [want]);
    expect(diff / scale).toBeLessThan(1e-3);
  });

  it.skipIf(!haveModels)('dispose: a model disposed while a session evaluates ends that evaluation cleanly; the device stays usable', async () => {
    const file = path.join(MODELS, 'stories260K-f32.gguf');
    const m = await loadModel(file, { gpu: 'vulkan' });
    const s = m.createSession({ contextSize: 256 });
    const p = s.evaluate(Int32Array.from({ length: 200 }, (_, i) => (i * 7 + 3) % 500));
    m.dispose();
    await p.then(
      (l) => expect(l.length).toBeGreaterThan(0),
      (e) => expect(['ERR_DISPOSED', 'ERR_ABORTED', 'ERR_CANCELLED']).toContain((e as { code: string }).code),
    );
    const again = await load(file, 'vulkan');
    const l = await again.createSession().evaluate(Int32Array.from([1, 403]));
    expect(l.length).toBe(again.info.vocabSize);
  });
});

// The sliding-window KV cache on the device: the host cache of a windowed layer keeps only
// its window (batchSize 7 makes it far smaller than the context), the device copy keeps
// every position at its index and the attention reads only the window, so a windowed
// session must give the bits of a whole-cache session (fullWindowCache) on the device too,
// through prompts that move the window many times, decode steps, save/restore, truncate
// and context shift; and stay within tolerance of the CPU backend.
describe.skipIf(skipReason !== undefined)('sliding-window KV cache on the Vulkan backend', () => {
  const bits = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
  const same = (a: Float32Array, b: Float32Array, what: string) => {
    expect(a.length, what).toBe(b.length);
    const ua = bits(a),
      ub = bits(b);
    for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) throw new Error(`${what}: logit ${i} differs (${a[i]} vs ${b[i]})`);
  };
  const promptOf = (m: Model, n: number) => Array.from({ length: n }, (_, i) => 1 + ((i * 37 + 11) % (m.info.vocabSize - 2)));

  for (const [name, mix] of [['tiny-gemma3', 'f16'], ['tiny-gemma2', 'q8_0']] as const)
    it(`${name} ${mix}: windowed sessions give the bits of whole-cache sessions (prompt, decode, save/restore, truncate, shift) and match the CPU`, async () => {
      const file = await syntheticModel(name, mix);
      const m = await load(file, 'vulkan', { batchSize: 7 }),
        cpu = await load(file, false, { batchSize: 7 });
      expect(m.info.gpu).not.toBeNull();
      const prompt = promptOf(m, 90);
      const w = m.createSession({ contextSize: 128 }),
        f = m.createSession({ contextSize: 128, fullWindowCache: true }),
        c = cpu.createSession({ contextSize: 128 });
      expect(w.cacheBytes).toBeLessThan(f.cacheBytes);
      const lw = await w.evaluate(prompt),
        lf = await f.evaluate(prompt),
        lc = await c.evaluate(prompt);
      same(lw, lf, 'prompt');
      const tol = mix === 'f16' ? 5e-3 : 3e-2;
      const close = (a: Float32Array, b: Float32Array, what: string) => {
        const { diff, scale } = maxDiff([a], [b]);
        expect(diff / scale, what).toBeLessThan(tol);
      };
      close(lw, lc, 'prompt vs the CPU');
      for (const t of [5, 17, 33, 2, 9, 41, 8, 3, 12, 20]) {
        const a = await w.evaluate([t]),
          b = await f.evaluate([t]),
          d = await c.evaluate([t]);
        same(a, b, `decode ${t}`);
        close(a, d, `decode ${t} vs the CPU`);
      }
      // Save / restore (the windowed state into a fresh windowed session on the device).
      const state = w.save();
      const r = m.createSession({ contextSize: 128 });
      r.restore(state);
      const want = await f.evaluate([42]);
      same(await w.evaluate([42]), want, 'after save');
      same(await r.evaluate([42]), want, 'restored');
      // Truncate within the window.
      for (const s of [w, f]) s.truncate(97);
      same(await w.evaluate([8, 9]), await f.evaluate([8, 9]), 'after truncate');
      // Context shift whose kept tokens the windows still hold (keys re-rotated on the host,
      // each layer with its own RoPE base on gemma3, the device copy uploaded again).
      await w.shift(4, 30);
      await f.shift(4, 30);
      // The CPU session follows the same steps.
      await c.evaluate([42]);
      c.truncate(97);
      await c.evaluate([8, 9]);
      await c.shift(4, 30);
      expect(Array.from(c.tokens)).toEqual(Array.from(w.tokens));
      expect(Array.from(w.tokens)).toEqual(Array.from(f.tokens));
      const sw = await w.evaluate([8, 9, 10]);
      same(sw, await f.evaluate([8, 9, 10]), 'after shift');
      close(sw, await c.evaluate([8, 9, 10]), 'after shift vs the CPU');
      for (const s of [w, f, c, r]) s.dispose();
    });
});

if (skipReason) it.skip(`models on the Vulkan backend: skipped (${skipReason})`, () => {});
