// The generation loop against scripted doubles (test/generation/fakes.ts): no model needed.
// The end-to-end tests on the real model are in model.test.ts.
import { describe, expect, it } from 'vitest';
import { SparrowError } from '../../src/errors.js';
import { complete, generate, syncSession, type GenerationTarget } from '../../src/generation/generate.js';
import type { GenerateOptions, GenerationChunk } from '../../src/generation/types.js';
import { ByteTokenizer, EOS, MARK, ScriptedSession, ShiftingSession, VOCAB, bytesOf } from './fakes.js';

const tokenizer = new ByteTokenizer();

/** A session that spells `text` after a prompt of `promptLen` tokens, then EOS. */
function spelling(text: string, promptLen: number, contextSize = 512): ScriptedSession {
  const b = bytesOf(text);
  return new ScriptedSession((cache) => {
    const i = cache.length - promptLen;
    return i < b.length ? b[i] : EOS;
  }, contextSize);
}

function target(session: ScriptedSession): GenerationTarget {
  return { session, tokenizer, vocabSize: VOCAB };
}

async function collect(session: ScriptedSession, input: string | number[], options?: GenerateOptions) {
  const gen = generate(target(session), input, options);
  const chunks: GenerationChunk[] = [];
  for await (const c of gen) chunks.push(c);
  return { chunks, result: await gen.result };
}

describe('generate', () => {
  it('streams chunks that add up to the result; ends at EOS', async () => {
    const s = spelling('Hello, world', 3);
    const { chunks, result } = await collect(s, 'abc', { addSpecial: false });
    expect(result.text).toBe('Hello, world');
    expect(result.stopReason).toBe('eos');
    expect(chunks.map((c) => c.text).join('')).toBe(result.text);
    expect(chunks.flatMap((c) => c.tokens)).toEqual(result.tokens);
    expect(result.tokens).toEqual(bytesOf('Hello, world'));
    expect(result.timings).toMatchObject({ promptTokens: 3, generatedTokens: 12 });
    expect(result.timings.promptMs).toBeGreaterThanOrEqual(0);
    expect(result.timings.generationMs).toBeGreaterThanOrEqual(0);
  });

  it('string input gets BOS on an empty session, token input is taken as is', async () => {
    const s = spelling('x', 4);
    await complete(target(s), 'abc');
    expect(s.evaluated[0]).toEqual([258, 97, 98, 99]);
    const s2 = spelling('x', 2);
    await complete(target(s2), [5, 6]);
    expect(s2.evaluated[0]).toEqual([5, 6]);
  });

  it('multi-byte characters split across tokens are never emitted in halves', async () => {
    const text = 'héllo wörld 👋 日本';
    const s = spelling(text, 1);
    const { chunks, result } = await collect(s, [1]);
    expect(result.text).toBe(text);
    expect(result.tokens.length).toBe(Buffer.byteLength(text));
    for (const c of chunks) {
      expect(c.text).not.toContain('\uFFFD');
      expect(c.text.isWellFormed()).toBe(true);
    }
    // The emoji is four tokens: the chunk that carries it carries all four.
    const emoji = chunks.find((c) => c.text.includes('👋'))!;
    expect(emoji.tokens.slice(-4)).toEqual(bytesOf('👋'));
  });

  it('a stop string spelled by several tokens ends the generation and never leaks', async () => {
    const s = spelling('Answer: 42\n\nUser: next', 1);
    const { chunks, result } = await collect(s, [1], { stop: ['\n\nUser:'] });
    expect(result.text).toBe('Answer: 42');
    expect(result.stopReason).toBe('stop');
    expect(result.stop).toBe('\n\nUser:');
    expect(chunks.map((c) => c.text).join('')).toBe('Answer: 42');
    for (const c of chunks) expect(c.text).not.toContain('\n');
  });

  it('stop token ids end the generation without the token', async () => {
    const s = new ScriptedSession((cache) => (cache.length < 4 ? 65 : MARK));
    const r = await complete(target(s), [1], { stop: [MARK, 'never'] });
    expect(r).toMatchObject({ text: 'AAA', stopReason: 'stop', stop: MARK, tokens: [65, 65, 65] });
  });

  it('maxTokens', async () => {
    const s = spelling('abcdefgh', 1);
    const r = await complete(target(s), [1], { maxTokens: 3 });
    expect(r).toMatchObject({ text: 'abc', stopReason: 'maxTokens' });
    // The session holds the prompt and all the output: 1 prompt + 3 decode calls.
    expect(s.cache).toEqual([1, ...bytesOf('abc')]);
    expect(s.evaluated.length).toBe(4);
  });

  it('a generation with empty input continues the session', async () => {
    const s = spelling('abcdefgh', 1);
    await complete(target(s), [1], { maxTokens: 3 });
    const r = await complete(target(s), [], { maxTokens: 2 });
    expect(s.truncations).toEqual([3]);  // the last token is evaluated again for its logits
    expect(s.evaluated[4]).toEqual([99]);
    expect(r.text).toBe('de');
  });

  it('abort mid-generation stops within one token and keeps the text so far', async () => {
    const s = new ScriptedSession(() => 65);
    const ac = new AbortController();
    const gen = generate(target(s), [1], { signal: ac.signal });
    let seen = 0;
    for await (const c of gen) {
      seen += c.tokens.length;
      if (seen === 5) ac.abort();
    }
    const r = await gen.result;
    expect(r.stopReason).toBe('abort');
    expect(r.text).toBe('AAAAA');
    expect(r.tokens.length).toBeLessThanOrEqual(6);
  });

  it('an already aborted signal generates nothing', async () => {
    const s = new ScriptedSession(() => 65);
    const r = await complete(target(s), [1], { signal: AbortSignal.abort() });
    expect(r).toMatchObject({ stopReason: 'abort', text: '', tokens: [] });
    expect(s.evaluated.length).toBe(0);
  });

  it('leaving the for-await loop aborts the generation', async () => {
    const s = new ScriptedSession(() => 66);
    const gen = generate(target(s), [1]);
    let n = 0;
    for await (const _ of gen) if (++n === 3) break;
    const r = await gen.result;
    expect(r.stopReason).toBe('abort');
    expect(r.tokens.length).toBeLessThanOrEqual(4);
  });

  it('disposing the session mid-generation ends it cleanly as an abort', async () => {
    const s = new ScriptedSession(() => 67);
    const gen = generate(target(s), [1]);
    let n = 0;
    for await (const _ of gen) if (++n === 4) s.dispose();
    const r = await gen.result;
    expect(r.stopReason).toBe('abort');
    expect(r.text.startsWith('CCCC')).toBe(true);
  });

  it('disposing while only `result` is awaited: no unhandled rejection', async () => {
    const s = new ScriptedSession(() => 67);
    const gen = generate(target(s), [1]);
    setTimeout(() => s.dispose(), 5);
    expect((await gen.result).stopReason).toBe('abort');
  });

  it('a second generate on a busy session is a clear error; after the first ends it works', async () => {
    const s = spelling('ab', 1);
    const g1 = generate(target(s), [1]);
    let err: unknown;
    try {
      generate(target(s), [1]);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SparrowError);
    expect((err as SparrowError).code).toBe('ERR_SESSION_BUSY');
    await g1.result;
    await expect(complete(target(s), [])).resolves.toBeDefined();
  });

  it('concurrent generations on different sessions interleave', async () => {
    const a = spelling('aaaa', 1);
    const b = spelling('bbbb', 1);
    const [ra, rb] = await Promise.all([complete(target(a), [1]), complete(target(b), [1])]);
    expect(ra.text).toBe('aaaa');
    expect(rb.text).toBe('bbbb');
  });

  it('errors other than disposal reject the result and the iteration', async () => {
    const s = new ScriptedSession(() => 65);
    const gen = generate(target(s), [1], {
      logitProcessors: [() => { throw new Error('processor failed'); }],
    });
    await expect(gen.result).rejects.toThrow('processor failed');
    await expect(gen.next()).rejects.toThrow('processor failed');
  });
});

describe('context', () => {
  it('shift: keeps the first tokens, drops the oldest half of the rest, continues', async () => {
    const ctx = 16;
    const s = new ScriptedSession((cache) => 100 + (cache.length % 10), ctx);
    const prompt = [1, 2, 3, 4, 5, 6];
    const r = await complete(target(s), prompt, { maxTokens: 40, contextShift: { keep: 2 } });
    expect(r.stopReason).toBe('maxTokens');
    expect(r.tokens.length).toBe(40);
    expect(s.cache.length).toBeLessThanOrEqual(ctx);
    expect(s.cache.slice(0, 2)).toEqual([1, 2]);
    // Every shift truncated the cache (to `keep`, or further along where the shifted
    // sequence happens to share a longer prefix with the cache) and re-evaluated the rest.
    expect(s.truncations.length).toBeGreaterThan(0);
    expect(s.truncations.every((n) => n >= 2 && n < ctx)).toBe(true);
    // The cache holds the most recent tokens after the kept ones, in order.
    const all = [...prompt, ...r.tokens];
    const tail = s.cache.slice(2);
    expect(tail).toEqual(all.slice(all.length - tail.length));
  });

  it('shift on a session with a native shift(): moves the cache, evaluates nothing again', async () => {
    const ctx = 16;
    const s = new ShiftingSession((cache) => 100 + (cache.length % 10), ctx);
    const prompt = [1, 2, 3, 4, 5, 6];
    const r = await complete(target(s), prompt, { maxTokens: 40, contextShift: { keep: 2 } });
    expect(r.tokens.length).toBe(40);
    expect(s.shifts.length).toBeGreaterThan(0);
    expect(s.shifts.every(([keep, drop]) => keep === 2 && drop >= 1)).toBe(true);
    expect(s.truncations).toEqual([]);
    // After the prompt, every evaluation was one token: no kept tail evaluated again.
    expect(s.evaluated.slice(1).every((e) => e.length === 1)).toBe(true);
    const all = [...prompt, ...r.tokens];
    expect(s.cache.slice(0, 2)).toEqual([1, 2]);
    expect(s.cache.slice(2)).toEqual(all.slice(all.length - (s.cache.length - 2)));

    // reevaluate: true takes the truncate-and-evaluate route on the same session kind.
    const e = new ShiftingSession((cache) => 100 + (cache.length % 10), ctx);
    const r2 = await complete(target(e), prompt, { maxTokens: 40, contextShift: { keep: 2, reevaluate: true } });
    expect(r2.tokens.length).toBe(40);
    expect(e.shifts).toEqual([]);
    expect(e.truncations.length).toBeGreaterThan(0);
    expect(e.cache).toEqual(s.cache);
  });

  it("contextShift 'stop' ends with contextFull", async () => {
    const s = new ScriptedSession(() => 70, 10);
    const r = await complete(target(s), [1, 2, 3], { contextShift: 'stop' });
    expect(r.stopReason).toBe('contextFull');
    expect(r.tokens.length).toBe(8);  // 3 + 7 in the cache, plus the sampled one that no longer fits
    expect(s.cache.length).toBe(10);
  });

  it('a prompt longer than the context is shifted, or refused with contextShift stop', async () => {
    const prompt = Array.from({ length: 30 }, (_, i) => i);
    const s = new ScriptedSession(() => EOS, 16);
    await complete(target(s), prompt, { contextShift: { keep: 3 } });
    expect(s.cache.slice(0, 3)).toEqual([0, 1, 2]);
    expect(s.cache[s.cache.length - 1]).toBe(29);
    const s2 = new ScriptedSession(() => EOS, 16);
    await expect(complete(target(s2), prompt, { contextShift: 'stop' })).rejects.toMatchObject({ code: 'ERR_CONTEXT_FULL' });
  });

  it('syncSession reuses the common prefix and evaluates only the rest', async () => {
    const s = new ScriptedSession(() => 1);
    await syncSession(s, [1, 2, 3, 4, 5]);
    const r = await syncSession(s, [1, 2, 3, 9, 9]);
    expect(s.truncations).toEqual([3]);
    expect(s.evaluated[1]).toEqual([9, 9]);
    expect(r.evaluated).toBe(2);
    // All cached: the last token is evaluated again for its logits.
    await syncSession(s, [1, 2, 3, 9, 9]);
    expect(s.evaluated[2]).toEqual([9]);
  });
});

describe('option validation names the option', () => {
  const s = new ScriptedSession(() => 1);
  const bad: Array<[unknown, string]> = [
    [{ maxTokens: -1 }, 'maxTokens'],
    [{ maxTokens: 1.5 }, 'maxTokens'],
    [{ stop: [''] }, 'stop'],
    [{ stop: [VOCAB + 5] }, 'stop'],
    [{ stop: {} }, 'stop'],
    [{ signal: {} }, 'signal'],
    [{ contextShift: 'sometimes' }, 'contextShift'],
    [{ contextShift: { keep: -1 } }, 'contextShift.keep'],
    [{ contextShift: { keepp: 1 } }, 'keepp'],
    [{ contextShift: { reevaluate: 'yes' } }, 'contextShift.reevaluate'],
    [{ addSpecial: 'yes' }, 'addSpecial'],
    [{ temprature: 1 }, 'temprature'],
    [{ topP: 2 }, 'topP'],
    ['fast', 'options'],
  ];
  for (const [o, name] of bad) {
    it(`${name}: ${JSON.stringify(o)}`, () => {
      expect(() => generate(target(s), [1], o as GenerateOptions)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG', message: expect.stringContaining(name) }),
      );
    });
  }
  it('input', () => {
    expect(() => generate(target(s), [1, -1])).toThrow(/input\[1\]/);
    expect(() => generate(target(s), {} as unknown as number[])).toThrow(/input/);
  });
});
