// End to end on the real stories260K model (../shared/models, see its PROVENANCE.md):
// greedy generation against node-llama-cpp's reference outputs, stops, multi-byte text,
// seeds, abort, dispose, context shift, save/restore, concurrency and chats.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, type Model } from '../../src/model.js';
import type { Session } from '../../src/session.js';
import type { LogitProcessor } from '../../src/sampling/sampler.js';

const MODELS = path.resolve('../shared/models');
const ref = JSON.parse(readFileSync(path.join(MODELS, 'reference_outputs.json'), 'utf8')) as {
  models: Record<string, Array<{ prompt: string; promptTokens: number[]; maxTokens: number; outTokens: number[]; outPiecesText: string }>>;
};

let model: Model;
beforeAll(async () => {
  model = await loadModel(path.join(MODELS, 'stories260K-f32.gguf'), { threads: 1 });
});
afterAll(() => model?.dispose());

/** Forces the generated tokens to follow `script` (then lets the model go on). */
function forceScript(script: number[], promptLen: number): LogitProcessor {
  return (logits, history) => {
    const k = history.length - promptLen;
    if (k < script.length) {
      logits.fill(-Infinity);
      logits[script[k]] = 0;
    }
  };
}

describe('greedy generation reproduces the reference outputs token for token', () => {
  for (const file of ['stories260K-f32.gguf', 'stories260K-f16.gguf', 'stories260K-q8_0.gguf']) {
    it(file, async () => {
      const m = await loadModel(path.join(MODELS, file), { threads: 1 });
      try {
        // Q8_0: the 32-token prompts, as the issue sets out (see test/parity/stories.test.ts).
        for (const r of ref.models[file].filter((x: { maxTokens: number }) => !file.includes('q8_0') || x.maxTokens <= 32)) {
          // The references were made with llama.cpp's flash attention (node-llama-cpp's
          // default): see test/parity/stories.test.ts.
          const s = m.createSession({ flashAttention: true });
          // Text prompts go through the model's tokenizer, with BOS added as the model says.
          const input = r.prompt === '' || r.promptTokens.length === 1 ? r.promptTokens : r.prompt;
          const res = await s.complete(input, { temperature: 0, maxTokens: r.outTokens.length });
          expect(s.tokens.slice(0, r.promptTokens.length)).toEqual(r.promptTokens);
          expect(res.tokens).toEqual(r.outTokens);
          expect(res.text).toBe(r.outPiecesText);
          expect(res.stopReason).toBe('maxTokens');
          expect(res.timings.promptTokens).toBe(r.promptTokens.length);
          s.dispose();
        }
      } finally {
        m.dispose();
      }
    });
  }

  it('streamed chunks add up to the result', async () => {
    const r = ref.models['stories260K-f32.gguf'][1];
    const s = model.createSession();
    const gen = s.generate(r.prompt, { maxTokens: 32 });
    let text = '';
    const tokens: number[] = [];
    for await (const c of gen) {
      text += c.text;
      tokens.push(...c.tokens);
    }
    const res = await gen.result;
    expect(tokens).toEqual(r.outTokens);
    expect(text).toBe(res.text);
    s.dispose();
  });
});

describe('text', () => {
  it('a stop string across tokens ends the output before it', async () => {
    // Reference: ", there was a little girl named Lily. She loved ..."
    const s = model.createSession();
    const res = await s.complete('Once upon a time', { maxTokens: 32, stop: ['l named L'] });
    expect(res).toMatchObject({ text: ', there was a little gir', stopReason: 'stop', stop: 'l named L' });
    // Stop token ids: 426 is '.' in this vocabulary.
    const s2 = model.createSession();
    const r2 = await s2.complete('Once upon a time', { maxTokens: 32, stop: [426] });
    expect(r2).toMatchObject({ text: ', there was a little girl named Lily', stopReason: 'stop', stop: 426 });
  });

  it('multi-byte characters spelled by byte tokens come out whole', async () => {
    const text = 'é👋日';
    const script = [...Buffer.from(text, 'utf8')].map((b) => 3 + b);  // <0xXX> tokens are 3 + byte
    const s = model.createSession();
    const prompt = [1, 403];
    const gen = s.generate(prompt, { maxTokens: script.length, logitProcessors: [forceScript(script, prompt.length)] });
    const chunks: string[] = [];
    for await (const c of gen) chunks.push(c.text);
    const res = await gen.result;
    expect(res.text).toBe(text);
    expect(res.tokens).toEqual(script);
    expect(chunks).toEqual(['é', '👋', '日']);
  });
});

describe('sampling on the model', () => {
  it('the same seed reproduces the output; another seed does not', async () => {
    const run = async (seed: number) => {
      const s = model.createSession();
      const r = await s.complete('Lily and Tom', { temperature: 1, topK: 0, topP: 1, seed, maxTokens: 40 });
      s.dispose();
      return r.tokens;
    };
    const a = await run(7);
    expect(await run(7)).toEqual(a);
    expect(await run(8)).not.toEqual(a);
  });
});

describe('abort and dispose', () => {
  it('abort mid-generation stops within one token and keeps the text', async () => {
    const s = model.createSession();
    const ac = new AbortController();
    const gen = s.generate('Once upon a time', { signal: ac.signal, maxTokens: 200 });
    let atAbort = -1;
    let n = 0;
    for await (const c of gen) {
      n += c.tokens.length;
      if (n >= 10 && atAbort < 0) {
        atAbort = n;
        ac.abort();
      }
    }
    const res = await gen.result;
    expect(res.stopReason).toBe('abort');
    expect(res.tokens.length - atAbort).toBeLessThanOrEqual(1);
    expect(res.text.startsWith(', there was a little girl')).toBe(true);
    s.dispose();
  });

  it('disposing the session mid-generation ends it as an abort', async () => {
    const s = model.createSession();
    const gen = s.generate('Once upon a time', { maxTokens: 200 });
    let n = 0;
    for await (const _ of gen) if (++n === 5) s.dispose();
    const res = await gen.result;
    expect(res.stopReason).toBe('abort');
    expect(res.tokens.length).toBeGreaterThanOrEqual(5);
    expect(() => s.generate('more')).toThrow(expect.objectContaining({ code: 'ERR_DISPOSED' }));
  });

  it('disposing the model mid-generation ends every generation as an abort', async () => {
    const m = await loadModel(path.join(MODELS, 'stories260K-f32.gguf'), { threads: 1 });
    const a = m.createSession();
    const b = m.createSession();
    const ga = a.generate('Once upon a time', { maxTokens: 400, contextShift: 'stop' });
    const gb = b.generate('The cat', { maxTokens: 400, contextShift: 'stop' });
    setTimeout(() => m.dispose(), 20);
    const [ra, rb] = await Promise.all([ga.result, gb.result]);
    expect(ra.stopReason).toBe('abort');
    expect(rb.stopReason).toBe('abort');
  });

  it('a second generate on a busy session is a clear error', async () => {
    const s = model.createSession();
    const gen = s.generate('Once upon a time', { maxTokens: 5 });
    expect(() => s.generate('again')).toThrow(expect.objectContaining({ code: 'ERR_SESSION_BUSY' }));
    await gen.result;
    s.dispose();
  });
});

describe('context', () => {
  it('shift (native, the default) keeps the first tokens and continues without evaluating the tail again', async () => {
    const s = model.createSession({ contextSize: 64 });
    const before = model.stats.evaluations;
    const res = await s.complete('Once upon a time', { maxTokens: 150, contextShift: { keep: 5 } });
    expect(res.stopReason).toBe('maxTokens');
    const cache = s.tokens;
    expect(cache.length).toBeLessThanOrEqual(64);
    expect(cache.slice(0, 5)).toEqual([1, 403, 407, 261, 378]);
    expect(cache.slice(5)).toEqual(res.tokens.slice(res.tokens.length - (cache.length - 5)));
    // One prompt evaluation, one per generated token, and one job per shift (at least 3
    // shifts for 155 tokens in 64): no extra evaluation of a kept tail.
    const jobs = model.stats.evaluations - before;
    expect(jobs).toBeGreaterThanOrEqual(1 + 150 + 3);
    expect(jobs).toBeLessThanOrEqual(1 + 150 + 6);
    s.dispose();
  });

  it('shift with reevaluate: the cache matches a fresh evaluation', async () => {
    const s = model.createSession({ contextSize: 64 });
    const res = await s.complete('Once upon a time', { maxTokens: 150, contextShift: { keep: 5, reevaluate: true } });
    expect(res.stopReason).toBe('maxTokens');
    expect(res.tokens.length).toBe(150);
    const cache = s.tokens;
    expect(cache.length).toBeLessThanOrEqual(64);
    expect(cache.slice(0, 5)).toEqual([1, 403, 407, 261, 378]);
    // The cache ends with the latest output, in order.
    expect(cache.slice(5)).toEqual(res.tokens.slice(res.tokens.length - (cache.length - 5)));
    // Continuing it gives the same tokens as a fresh session fed the same tokens.
    const fresh = model.createSession({ contextSize: 64 });
    const a = await s.complete([], { maxTokens: 8, contextShift: 'stop' });
    const b = await fresh.complete(cache, { maxTokens: 8, contextShift: 'stop' });
    expect(a.tokens).toEqual(b.tokens);
    s.dispose();
    fresh.dispose();
  });

  it("contextShift 'stop' ends with contextFull", async () => {
    const s = model.createSession({ contextSize: 32 });
    const res = await s.complete('Once upon a time', { maxTokens: 100, contextShift: 'stop' });
    expect(res.stopReason).toBe('contextFull');
    expect(res.tokens.length).toBe(32 - 5 + 1);
    s.dispose();
  });

  it('save and restore: the restored session continues exactly like the original', async () => {
    const a = model.createSession();
    await a.complete('Lily and Tom', { maxTokens: 20 });
    const state = a.save();
    const cont = await a.complete([], { maxTokens: 20 });
    const b = model.createSession();
    b.restore(state);
    const again = await b.complete([], { maxTokens: 20 });
    expect(again.tokens).toEqual(cont.tokens);
    // A state is checked against the model it came from.
    const other = await loadModel(path.join(MODELS, 'stories260K-q8_0.gguf'), { threads: 1 });
    const c = other.createSession();
    expect(() => c.restore(state)).toThrow(expect.objectContaining({ code: 'ERR_STATE_MISMATCH' }));
    other.dispose();
    a.dispose();
    b.dispose();
  });
});

describe('concurrency', () => {
  it('generations on several sessions of one model run at the same time and stay exact', async () => {
    const rs = ref.models['stories260K-f32.gguf'].slice(0, 3);
    const sessions: Session[] = rs.map(() => model.createSession());
    const order: number[] = [];
    const results = await Promise.all(
      rs.map(async (r, i) => {
        const gen = sessions[i].generate(r.prompt, { maxTokens: 32 });
        for await (const _ of gen) order.push(i);
        return gen.result;
      }),
    );
    results.forEach((res, i) => expect(res.tokens).toEqual(rs[i].outTokens));
    // Interleaved, not one after the other: some chunk of session 0 comes after one of session 2.
    expect(order.lastIndexOf(0)).toBeGreaterThan(order.indexOf(2));
    sessions.forEach((s) => s.dispose());
  });
});

describe('chat', () => {
  it('keeps the history, reuses the cached prefix, and answers like a fresh evaluation', async () => {
    const chat = model.createChat({ systemPrompt: 'You tell short stories.', contextSize: 512 });
    const first = await chat.prompt('Tell me about Lily.', { maxTokens: 12 });
    expect(first.text.length).toBeGreaterThan(0);
    expect(chat.history.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
    expect(chat.history[2].content).toBe(first.text);

    const before = chat.session.tokens.length;
    const gen = chat.send('And Tom?', { maxTokens: 12 });
    let streamed = '';
    for await (const c of gen) streamed += c.text;
    const second = await gen.result;
    expect(streamed).toBe(second.text);
    // Only the new part of the conversation was evaluated.
    expect(second.timings.promptTokens).toBeLessThan(chat.session.tokens.length - second.tokens.length - before / 2);
    expect(chat.history.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);

    // The same prompt tokens in a fresh session give the same greedy answer.
    const promptTokens = chat.session.tokens.slice(0, chat.session.tokens.length - second.tokens.length);
    const fresh = model.createSession();
    const check = await fresh.complete(promptTokens, { maxTokens: 12 });
    expect(check.tokens).toEqual(second.tokens);
    fresh.dispose();

    // history can be set; a bad one names the field.
    chat.history = [{ role: 'system', content: 'Be brief.' }];
    expect(chat.history).toEqual([{ role: 'system', content: 'Be brief.' }]);
    expect(() => {
      chat.history = [{ role: 'user', content: 5 as unknown as string }];
    }).toThrow(/history\[0\]\.content/);
    expect(() => model.createChat({ sytemPrompt: 'x' } as object)).toThrow(/sytemPrompt/);
    chat.dispose();
  });
});
