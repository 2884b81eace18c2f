// End to end: sampled generation (temperature > 0) under a JSON schema or a GBNF grammar,
// on the real stories260K model (SentencePiece, 512 tokens) and on a synthetic model with
// a byte-level BPE vocabulary and random weights. Every output must parse and validate.
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syntheticModel } from '../../models/cache.js';
import { compileGrammar } from '../../src/grammar/index.js';
import { loadModel, type Model } from '../../src/model.js';
import { SCHEMAS } from './corpus.js';

const ajv = new Ajv2020.default({ strict: false });
addFormats.default(ajv);

const SCHEMA_NAMES = ['weatherTool', 'person', 'sentiment', 'geoJsonPoint', 'shape', 'fileTree', 'calendarEvent', 'stringList', 'githubIssue'];

let stories: Model;
let synthetic: Model;
beforeAll(async () => {
  stories = await loadModel(path.resolve('../shared/models/stories260K-f32.gguf'), { threads: 1 });
  synthetic = await loadModel(await syntheticModel('tiny-qwen2', 'q8_0'), { threads: 1 });
}, 120_000);
afterAll(() => {
  stories?.dispose();
  synthetic?.dispose();
});

async function runSchemas(model: () => Model, temperature: number) {
  const session = model().createSession({ contextSize: 512 });
  let ended = 0;
  let runs = 0;
  try {
    for (const name of SCHEMA_NAMES) {
      const schema = SCHEMAS[name]!;
      const validate = ajv.compile(schema);
      for (let seed = 1; seed <= 2; seed++) {
        session.truncate(0);
        const r = await session.complete('Once upon a time', { jsonSchema: schema, temperature, seed, maxTokens: 400, topK: 0, topP: 1 });
        runs++;
        if (r.stopReason === 'maxTokens') continue; // cut off mid-value: nothing to validate
        expect(r.stopReason, name).toBe('eos');
        ended++;
        let value: unknown;
        expect(() => (value = JSON.parse(r.text)), `${name}: ${r.text}`).not.toThrow();
        expect(validate(value), `${name}: ${r.text} ${JSON.stringify(validate.errors)}`).toBe(true);
      }
    }
  } finally {
    session.dispose();
  }
  // Most runs finish within the budget (the grammar ends them).
  expect(ended).toBeGreaterThanOrEqual(runs * 0.6);
}

describe('structured generation', () => {
  it('stories260K, temperature 1: every finished output validates', () => runSchemas(() => stories, 1), 300_000);
  it('synthetic byte-level BPE model, temperature 1.5: every finished output validates', () => runSchemas(() => synthetic, 1.5), 300_000);

  it('greedy, a GBNF grammar, a compiled grammar reused across sessions, and chat.send', async () => {
    const grammar = `root ::= "The answer is " ("yes" | "no") "."`;
    const s = stories.createSession();
    try {
      const r = await s.complete('Once upon a time', { grammar, maxTokens: 50 });
      expect(r.text).toMatch(/^The answer is (yes|no)\.$/);
      expect(r.stopReason).toBe('eos');
      const g = compileGrammar(stories.tokenizer, { jsonSchema: SCHEMAS.weatherTool! });
      for (let i = 0; i < 3; i++) {
        s.truncate(0);
        const out = await s.complete('Lily', { grammar: g, temperature: 0.8, seed: i, maxTokens: 300 });
        if (out.stopReason === 'eos') expect(ajv.validate(SCHEMAS.weatherTool!, JSON.parse(out.text))).toBe(true);
      }
      // Streaming chunks add up to the text, and logit processors / bias cannot lift the mask.
      s.truncate(0);
      const gen = s.generate('Tom', { grammar, temperature: 1, seed: 3, logitBias: { 5: 100 }, logitProcessors: [(l) => l.fill(0)] });
      let streamed = '';
      for await (const c of gen) streamed += c.text;
      const res = await gen.result;
      expect(streamed).toBe(res.text);
      expect(res.text).toMatch(/^The answer is (yes|no)\.$/);
    } finally {
      s.dispose();
    }
    const chat = stories.createChat({ contextSize: 512 });
    try {
      const r = await chat.prompt('Is it raining?', { grammar, temperature: 0.7, seed: 1 });
      expect(r.text).toMatch(/^The answer is (yes|no)\.$/);
    } finally {
      chat.dispose();
    }
  }, 120_000);

  it('every sampler option keeps the output valid', async () => {
    const schema = SCHEMAS.weatherTool!;
    const validate = ajv.compile(schema);
    const variants = [
      { temperature: 0 },
      { temperature: 0.9, topK: 5 },
      { temperature: 1.2, topP: 0.5 },
      { temperature: 1, minP: 0.2, topK: 0 },
      { temperature: 1, typicalP: 0.7 },
      { temperature: 1, repeatPenalty: 1.5, frequencyPenalty: 0.5, presencePenalty: 0.5, lastN: 16 },
      { temperature: 1, logitBias: { 10: 5, 20: -Infinity } },
    ];
    const s = stories.createSession({ contextSize: 512 });
    try {
      let ended = 0;
      for (const [i, v] of variants.entries()) {
        s.truncate(0);
        const r = await s.complete('Once upon a time', { jsonSchema: schema, seed: i + 1, maxTokens: 300, ...v });
        if (r.stopReason !== 'eos') continue;
        ended++;
        expect(validate(JSON.parse(r.text)), `${JSON.stringify(v)}: ${r.text}`).toBe(true);
      }
      expect(ended).toBeGreaterThanOrEqual(variants.length - 2);
    } finally {
      s.dispose();
    }
  }, 120_000);

  it('bad options are clear errors', async () => {
    const s = stories.createSession();
    try {
      expect(() => s.generate('x', { grammar: 'root ::= "a' })).toThrow(/line 1, column 10/);
      expect(() => s.generate('x', { jsonSchema: { type: 'object', propertyNames: {} } })).toThrow(/propertyNames/);
      expect(() => s.generate('x', { jsonSchema: {}, grammar: 'root ::= "a"' })).toThrow(/either jsonSchema or grammar/);
      expect(() => s.generate('x', { grammar: 42 as unknown as string })).toThrow(/grammar/);
      const other = compileGrammar(synthetic.tokenizer, { grammar: 'root ::= "a"' });
      expect(() => s.generate('x', { grammar: other })).toThrow(/another tokenizer/);
      // A different tokenizer object with the same vocabulary is accepted.
      const { loadTokenizer } = await import('../../src/tokenizer/index.js');
      const sameVocab = compileGrammar(loadTokenizer(path.resolve('../shared/models/stories260K-f32.gguf')), { grammar: 'root ::= "Yes."' });
      expect((await s.complete('x', { grammar: sameVocab })).text).toBe('Yes.');
      const cyclic: Record<string, unknown> = { type: 'object' };
      cyclic.properties = { self: cyclic };
      expect(() => s.generate('x', { jsonSchema: cyclic })).toThrow(/plain JSON/);
    } finally {
      s.dispose();
    }
  });
});
