import { test } from 'vitest';
import { getLlama } from 'node-llama-cpp';
import { loadModel } from '../../src/index.js';
import { syntheticModel } from '../../models/cache.js';

const argmax = (x: Float32Array) => { let b = 0; for (let i = 1; i < x.length; i++) if (x[i]! > x[b]!) b = i; return b; };
test('speed', async () => {
  const file = await syntheticModel(process.env.SPEED_MODEL ?? 'tinyllama-1.1b', (process.env.SPEED_MIX ?? 'q4_0') as never);
  const threads = Number(process.env.SPEED_THREADS ?? 2);
  const PP = 512, TG = 64;
  const prompt = Array.from({ length: PP }, (_, i) => 3 + ((i * 7919) % 30000));
  const llama = await getLlama({ gpu: false, logLevel: 'error' as never });
  const lm = await llama.loadModel({ modelPath: file });
  const ours = await loadModel(file, { threads });
  const res: Record<string, number[]> = { 'ours pp': [], 'llama pp': [], 'ours tg': [], 'llama tg': [] };
  for (let rep = 0; rep < Number(process.env.SPEED_REPS ?? 2); rep++) {
    {
      const s = ours.createSession({ contextSize: 1024 });
      let t = performance.now();
      let logits = await s.evaluate(prompt);
      res['ours pp']!.push(PP / ((performance.now() - t) / 1000));
      t = performance.now();
      for (let i = 0; i < TG; i++) logits = await s.evaluate([argmax(logits)]);
      res['ours tg']!.push(TG / ((performance.now() - t) / 1000));
      s.dispose();
    }
    {
      const ctx = await lm.createContext({ contextSize: 1024, threads, batchSize: 512, flashAttention: false });
      const seq = ctx.getSequence();
      let t = performance.now();
      await seq.evaluateWithoutGeneratingNewTokens(prompt);
      res['llama pp']!.push(PP / ((performance.now() - t) / 1000));
      t = performance.now();
      let n = 0;
      for await (const _ of seq.evaluate([prompt[0]!], { temperature: 0 })) { if (++n >= TG) break; }
      res['llama tg']!.push(TG / ((performance.now() - t) / 1000));
      await ctx.dispose();
    }
  }
  console.log('SPEED', file, `threads=${threads}`, JSON.stringify(Object.fromEntries(Object.entries(res).map(([k, v]) => [k, v.map((x) => +x.toFixed(2))]))));
  ours.dispose();
  await lm.dispose();
}, 1_800_000);
