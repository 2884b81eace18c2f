/**
 * Log-probabilities for `logprobs` / `top_logprobs`: a logit processor (the first step of
 * the sampler chain, so it sees the model's own distribution, before biases and penalties)
 * records, at each step, the log-softmax normaliser, the top alternatives and a copy of the
 * logits; as generated tokens come out of the stream, each is matched with its step.
 */
import type { LogitProcessor } from '../sampling/sampler.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';

export interface TokenLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

interface Step {
  logits: Float32Array;
  lse: number;
  top: Array<[number, number]>;
}

const decoder = new TextDecoder('utf-8', { fatal: false });

export class LogprobRecorder {
  #steps: Step[] = [];
  readonly processor: LogitProcessor;

  constructor(private readonly tokenizer: Tokenizer, private readonly topN: number) {
    this.processor = (logits) => this.#record(logits);
  }

  #record(logits: Float32Array): void {
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
    let sum = 0;
    for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
    const lse = max + Math.log(sum);
    // The topN largest, kept sorted (descending) by insertion: O(vocab * topN) at worst, O(vocab) typically.
    const top: Array<[number, number]> = [];
    if (this.topN > 0) {
      for (let i = 0; i < logits.length; i++) {
        const v = logits[i]!;
        if (top.length === this.topN && v <= top[top.length - 1]![1]) continue;
        let j = top.length;
        while (j > 0 && top[j - 1]![1] < v) j--;
        top.splice(j, 0, [i, v]);
        if (top.length > this.topN) top.pop();
      }
    }
    this.#steps.push({ logits: logits.slice(), lse, top });
  }

  #entry(id: number): { token: string; bytes: number[] } {
    const bytes = this.tokenizer.piece(id, false);
    return { token: decoder.decode(bytes), bytes: Array.from(bytes) };
  }

  /** The log-probabilities of the next generated tokens, in order (one recorded step each). */
  take(tokens: readonly number[]): TokenLogprob[] {
    return tokens.map((t) => {
      const step = this.#steps.shift();
      if (!step) return { ...this.#entry(t), logprob: 0, top_logprobs: [] };
      return {
        ...this.#entry(t),
        logprob: step.logits[t]! - step.lse,
        top_logprobs: step.top.map(([id, v]) => ({ ...this.#entry(id), logprob: v - step.lse })),
      };
    });
  }
}
