/**
 * Greedy continuations of karpathy's stories260K (a real trained model, ../shared/models)
 * equal llama.cpp's reference token ids (reference_outputs.json, made with node-llama-cpp
 * 3.21.1 and checked against llama2.c): F32 and F16 for all 200 tokens from BOS, Q8_0 for
 * the 32-token prompts (its 200-token run is compared too: it matched when measured).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModel, type Session } from '../../src/index.js';

const dir = path.resolve('..', 'shared', 'models');
interface Ref {
  prompt: string;
  promptTokens: number[];
  maxTokens: number;
  outTokens: number[];
}
const refs = JSON.parse(readFileSync(path.join(dir, 'reference_outputs.json'), 'utf8')) as {
  models: Record<string, Ref[]>;
};

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

async function greedy(session: Session, prompt: number[], n: number): Promise<number[]> {
  const out: number[] = [];
  let logits = await session.evaluate(prompt);
  while (out.length < n) {
    out.push(argmax(logits));
    if (out.length < n) logits = await session.evaluate([out[out.length - 1]!]);
  }
  return out;
}

for (const file of ['stories260K-f32.gguf', 'stories260K-f16.gguf', 'stories260K-q8_0.gguf']) {
  describe(file, () => {
    for (const ref of refs.models[file]!) {
      const label = ref.prompt ? JSON.stringify(ref.prompt) : 'BOS only';
      test(`${label}: ${ref.maxTokens} greedy tokens`, async () => {
        for (const threads of [1, 2]) {
          const model = await loadModel(path.join(dir, file), { threads });
          const session = model.createSession();
          const out = await greedy(session, ref.promptTokens, ref.maxTokens);
          expect(out, `threads=${threads}`).toEqual(ref.outTokens);
          expect(session.tokens).toEqual([...ref.promptTokens, ...out.slice(0, -1)]);
          model.dispose();
        }
      });
    }
  });
}
