/**
 * The llama.cpp reference (node-llama-cpp 3.21.1) shared by the parity and quality tests:
 * load a GGUF file in llama.cpp and read its next-token distribution after every position
 * of a token sequence.
 *
 * node-llama-cpp exposes no raw logits, but with temperature 0 it gives the softmax of
 * the raw logits over the whole vocabulary, so its log-probabilities are the reference:
 * compare them with the log-softmax of our logits (`logSoftmax` below).
 */
import { afterAll, beforeAll } from 'vitest';
import { getLlama, type Llama } from 'node-llama-cpp';

/**
 * Starts llama.cpp (CPU only) before the calling test file's tests and disposes of it
 * after them. Returns an accessor for the instance (valid once `beforeAll` has run).
 */
export function useLlamaCpp(): () => Llama {
  let llama: Llama | undefined;
  beforeAll(async () => {
    llama = await getLlama({ gpu: false, logLevel: 'error' as never });
  });
  afterAll(async () => {
    // Bounded: a failed llama.cpp model load can leave its dispose() waiting.
    await Promise.race([llama?.dispose(), new Promise((r) => setTimeout(r, 10_000))]);
  });
  return () => {
    if (!llama) throw new Error('llama.cpp is not started (call useLlamaCpp() at the top level of a test file)');
    return llama;
  };
}

export interface ReferenceOptions {
  /** Context size, also the batch size (each sequence runs in one batch). Default 128. */
  contextSize?: number;
  /** llama.cpp's flash attention. Default false, as our default. */
  flashAttention?: boolean;
}

/**
 * llama.cpp's log-probabilities after every position of each sequence: `result[s][i]`
 * has `vocab` entries, -Infinity where llama.cpp's probability is 0. Each sequence is
 * evaluated from an empty context of its own, in one batch; the model is loaded once.
 */
export async function llamaLogProbs(
  llama: Llama,
  file: string,
  sequences: number[][],
  vocab: number,
  options: ReferenceOptions = {},
): Promise<Float64Array[][]> {
  const contextSize = options.contextSize ?? 128;
  const model = await llama.loadModel({ modelPath: file });
  try {
    const out: Float64Array[][] = [];
    for (const tokens of sequences) {
      if (tokens.length > contextSize) throw new Error(`sequence of ${tokens.length} tokens exceeds the context size ${contextSize}`);
      const ctx = await model.createContext({
        contextSize,
        flashAttention: options.flashAttention ?? false,
        threads: 2,
        batchSize: contextSize,
      });
      try {
        const res = await ctx.getSequence().controlledEvaluate(
          tokens.map((t) => [t, { generateNext: { probabilities: true, options: { temperature: 0 } } }] as const) as never,
        );
        out.push(
          tokens.map((_, i) => {
            const probs = (res[i] as { next?: { probabilities?: Map<number, number> } } | undefined)?.next?.probabilities;
            if (!probs) throw new Error(`node-llama-cpp gave no probabilities at position ${i}`);
            const lp = new Float64Array(vocab).fill(-Infinity);
            for (const [tok, p] of probs) lp[tok] = Math.log(p);
            return lp;
          }),
        );
      } finally {
        await ctx.dispose();
      }
    }
    return out;
  } finally {
    await model.dispose();
  }
}

/** llama.cpp's log-probabilities after every position of one sequence (see `llamaLogProbs`). */
export async function llamaLogProbsOf(
  llama: Llama,
  file: string,
  tokens: number[],
  vocab: number,
  options: ReferenceOptions = {},
): Promise<Float64Array[]> {
  return (await llamaLogProbs(llama, file, [tokens], vocab, options))[0]!;
}

/** Log-softmax in double precision (for our logits, to compare with llama.cpp's log-probabilities). */
export function logSoftmax(x: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i]! - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - lse);
}

/** Index of the largest entry (the first one on ties). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}
