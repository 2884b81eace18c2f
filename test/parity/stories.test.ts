/**
 * Greedy continuations of karpathy's stories260K (a real trained model, ../shared/models)
 * equal llama.cpp's reference token ids (reference_outputs.json, made with node-llama-cpp
 * 3.21.1 and checked against llama2.c): F32 and F16 for all 200 tokens from BOS, Q8_0 for
 * the 32-token prompts, as the issue sets out. (Q8_0's 200-token run is not held to the
 * reference: ours leaves it at output 114, a near-tie where llama.cpp's two best tokens
 * are 0.06 apart in log-probability and where llama.cpp's own Q8_0 run leaves its F32 run,
 * PROVENANCE.md; the order of float sums decides it.)
 *
 * The references were made with node-llama-cpp's default context, whose flashAttention
 * 'auto' turns llama.cpp's flash attention on for CPU models: so every reference is
 * checked with `flashAttention: true` (the same numerics). F32 and F16 are also checked
 * with our default attention path: they have no near-tie in these runs, so both paths
 * give the reference. Q8_0 has near-ties (e.g. "The cat" output 16: llama.cpp's two best
 * tokens are 0.08 apart in log-probability with flash attention and swap without it), so
 * only the matching setting can be held to the exact tokens.
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
    // Q8_0: the 32-token prompts only (see the header).
    for (const ref of refs.models[file]!.filter((r) => !file.includes('q8_0') || r.maxTokens <= 32)) {
      const label = ref.prompt ? JSON.stringify(ref.prompt) : 'BOS only';
      test(`${label}: ${ref.maxTokens} greedy tokens`, async () => {
        const modes = file.includes('q8_0') ? [true] : [true, false];
        for (const threads of [1, 2]) {
          const model = await loadModel(path.join(dir, file), { threads });
          for (const flashAttention of modes) {
            const session = model.createSession({ flashAttention });
            const out = await greedy(session, ref.promptTokens, ref.maxTokens);
            expect(out, `threads=${threads} flashAttention=${flashAttention}`).toEqual(ref.outTokens);
            expect(session.tokens).toEqual([...ref.promptTokens, ...out.slice(0, -1)]);
          }
          model.dispose();
        }
      });
    }
  });
}
