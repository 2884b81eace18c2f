/**
 * Concurrent decoding: k sessions of one model decoding greedily at the same time,
 * aggregate tokens/s for k = 1, 2, 4, 8; plus single-session pp512 and tg for reference.
 *
 *   npm run build:ts && node dist/bench/concurrent.js [model=tinyllama-1.1b] [mix=q4_0] [tokens=32] [threads]
 *
 * It drives the addon directly (sessionEvaluate + arg-max), so the same script measures
 * any build of the addon (SPARROW_ADDON=...). Decode is memory-bound: when the model
 * batches the decode steps of concurrent sessions into one forward pass (see
 * native/addon/model_binding.cpp), the aggregate rate grows with k. SPARROW_MAX_BATCH=1
 * turns that batching off.
 */
import { syntheticModel } from '../models/cache.js';
import type { MixName } from '../models/synthetic.js';
import { addon } from '../src/native.js';

type Handle = object;
interface Raw {
  loadModel(path: string, options: object): Promise<Handle | [Handle, unknown]>;
  modelInfo(model: Handle): { vocabSize: number; threads: number };
  modelStats?(model: Handle): unknown;
  modelDispose(model: Handle): void;
  sessionCreate(model: Handle, options: object): Handle;
  sessionEvaluate(session: Handle, tokens: Int32Array, all: boolean): Promise<Float32Array>;
  sessionReset(session: Handle): void;
  sessionDispose(session: Handle): void;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

async function main(): Promise<void> {
  const [name = 'tinyllama-1.1b', mix = 'q4_0', tokensArg = '32', threadsArg] = process.argv.slice(2);
  const genTokens = Number(tokensArg);
  const file = await syntheticModel(name, mix as MixName);
  const raw = addon<Raw>();
  const loaded = await raw.loadModel(file, threadsArg ? { threads: Number(threadsArg) } : {});
  const model = Array.isArray(loaded) ? loaded[0] : loaded;
  const { vocabSize: vocab, threads } = raw.modelInfo(model);
  const prompt = (seed: number, n: number) =>
    Int32Array.from({ length: n }, (_, i) => ((seed * 7919 + i * 104729) % (vocab - 10)) + 5);
  console.log(`${name} ${mix}: threads ${threads}, max batch ${process.env.SPARROW_MAX_BATCH ?? 'default'}`);

  {
    const s = raw.sessionCreate(model, { contextSize: 1024 });
    await raw.sessionEvaluate(s, prompt(1, 16), false); // warm up
    raw.sessionReset(s);
    let t = performance.now();
    await raw.sessionEvaluate(s, prompt(2, 512), false);
    const pp = 512 / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let i = 0; i < 32; i++) await raw.sessionEvaluate(s, prompt(3 + i, 1), false);
    const tg = 32 / ((performance.now() - t) / 1000);
    console.log(`pp512 ${pp.toFixed(1)} t/s   tg32 ${tg.toFixed(2)} t/s`);
    raw.sessionDispose(s);
  }

  for (const k of [1, 2, 4, 8]) {
    const sessions = Array.from({ length: k }, () => raw.sessionCreate(model, { contextSize: 256 }));
    const first = await Promise.all(sessions.map((s, i) => raw.sessionEvaluate(s, prompt(10 + i, 8), false)));
    const t = performance.now();
    const outs = await Promise.all(
      sessions.map(async (s, i) => {
        const out: number[] = [];
        let logits = first[i];
        for (let j = 0; j < genTokens; j++) {
          const tok = argmax(logits);
          out.push(tok);
          logits = await raw.sessionEvaluate(s, Int32Array.of(tok), false);
        }
        return out;
      }),
    );
    const sec = (performance.now() - t) / 1000;
    const total = outs.reduce((a, o) => a + o.length, 0);
    const stats = raw.modelStats?.(model);
    console.log(
      `k=${k}: ${total} tokens in ${sec.toFixed(2)} s = ${(total / sec).toFixed(2)} t/s aggregate` +
        (stats ? `   ${JSON.stringify(stats)}` : ''),
    );
    for (const s of sessions) raw.sessionDispose(s);
  }
  raw.modelDispose(model);
}

await main();
