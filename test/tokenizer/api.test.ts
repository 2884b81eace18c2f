/**
 * The Tokenizer API around the core algorithm: special tokens and their ids (checked against
 * llama.cpp through node-llama-cpp), addSpecial / parseSpecial, detokenize options, the
 * streaming decoder on characters split across tokens, and clear errors on bad input.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel, Token } from 'node-llama-cpp';
import { SparrowError } from '../../src/errors.js';
import { inspectGGUF } from '../../src/gguf.js';
import { Tokenizer, TokenAttr, loadTokenizer } from '../../src/tokenizer/index.js';
import { patchGGUF } from './gguf-patch.js';
import { STORIES, loadOracle, vocabFile } from './vocabs.js';

describe.each([
  ['llama-spm', () => vocabFile('llama-spm')],
  ['gpt-2', () => vocabFile('gpt-2')],
  ['deepseek-llm', () => vocabFile('deepseek-llm')],
  ['bert-bge', () => vocabFile('bert-bge')],
  ['stories260K', () => STORIES],
])('special tokens of %s match llama.cpp', (_name, file) => {
  let tok: Tokenizer;
  let oracle: LlamaModel;
  beforeAll(async () => {
    tok = loadTokenizer(file());
    oracle = await loadOracle(file());
  });
  afterAll(async () => {
    await oracle?.dispose();
  });

  it('bos, eos, eot, sep, nl and end-of-generation', () => {
    const t = oracle.tokens;
    expect(tok.special.bos).toBe(t.bos ?? null);
    expect(tok.special.eos).toBe(t.eos ?? null);
    expect(tok.special.eot).toBe(t.eot ?? null);
    expect(tok.special.sep).toBe(t.sep ?? null);
    expect(tok.special.nl).toBe(t.nl ?? null);
    for (let id = 0; id < tok.vocabSize; id++) {
      if (tok.isEog(id) !== oracle.isEogToken(id as Token)) throw new Error(`isEog(${id}) differs from llama.cpp`);
    }
  });

  it('token attributes', () => {
    for (let id = 0; id < tok.vocabSize; id += 7) {
      const theirs = oracle.getTokenAttributes(id as Token);
      expect(!!(tok.tokenAttributes(id) & TokenAttr.CONTROL), `control ${id}`).toBe(theirs.control);
      expect(!!(tok.tokenAttributes(id) & TokenAttr.USER_DEFINED), `user-defined ${id}`).toBe(theirs.userDefined);
      expect(!!(tok.tokenAttributes(id) & TokenAttr.BYTE), `byte ${id}`).toBe(theirs.byte);
    }
  });
});

describe('tokenize options', () => {
  const spm = loadTokenizer(vocabFile('llama-spm'));
  const gpt2 = loadTokenizer(vocabFile('gpt-2'));
  const bert = loadTokenizer(vocabFile('bert-bge'));

  it('addSpecial adds BOS/EOS as the file says (default true)', () => {
    const plain = spm.tokenize('Hello world', { addSpecial: false });
    expect(spm.addBos).toBe(true);
    expect(spm.addEos).toBe(false);
    expect(spm.tokenize('Hello world')).toEqual([1, ...plain]);
    expect(spm.tokenize('')).toEqual([1]);
    expect(spm.tokenize('', { addSpecial: false })).toEqual([]);
    // GPT-2's file asks for neither.
    expect(gpt2.tokenize('Hello world')).toEqual(gpt2.tokenize('Hello world', { addSpecial: false }));
    // BERT: CLS ... SEP.
    expect(bert.tokenize('hello')).toEqual([101, ...bert.tokenize('hello', { addSpecial: false }), 102]);
  });

  it('add_bos_token / add_eos_token from the file are obeyed', () => {
    const file = patchGGUF(vocabFile('llama-spm'), { 'tokenizer.ggml.add_bos_token': false, 'tokenizer.ggml.add_eos_token': true }, 'spm-eos');
    const tok = loadTokenizer(file);
    expect(tok.tokenize('Hi')).toEqual([...tok.tokenize('Hi', { addSpecial: false }), 2]);
  });

  it('parseSpecial turns control-token text into its id only when asked', () => {
    expect(gpt2.tokenize('a<|endoftext|>b', { addSpecial: false, parseSpecial: true })).toEqual([64, 50256, 65]);
    expect(gpt2.tokenize('a<|endoftext|>b', { addSpecial: false })).not.toContain(50256);
    expect(spm.tokenize('<s>x', { addSpecial: false, parseSpecial: true })[0]).toBe(1);
  });

  it('detokenize: special tokens shown by default, hidden with removeSpecial', () => {
    const ids = spm.tokenize('Hello world');
    expect(ids[0]).toBe(1);
    expect(spm.detokenize(ids)).toBe('<s> Hello world');
    expect(spm.detokenize(ids, { removeSpecial: true })).toBe(' Hello world'); // llama.cpp keeps the space after a removed BOS
    expect(spm.detokenize(ids.slice(1))).toBe('Hello world'); // the dummy-prefix space goes
    expect(spm.detokenize(ids, { removeSpecial: false, unparseSpecial: false })).toBe(' Hello world');
  });

  it('rejects bad arguments with clear errors', () => {
    expect(() => spm.tokenize(42 as never)).toThrow(SparrowError);
    expect(() => spm.tokenize('x', { addSpecial: 'yes' as never })).toThrow(/options\.addSpecial must be a boolean/);
    expect(() => spm.detokenize([1, 99999])).toThrow(/token id 99999 is out of range/);
    expect(() => spm.detokenize([1.5])).toThrow(/out of range/);
    expect(() => spm.createDecoder().push(-1)).toThrow(/out of range/);
    expect(() => loadTokenizer('')).toThrow(/path must be a non-empty string/);
    expect(() => loadTokenizer('/nonexistent/file.gguf')).toThrow();
  });
});

describe('building from metadata', () => {
  it('works on a model file and on vocab-only files alike', () => {
    const md = inspectGGUF(STORIES).metadata;
    const tok = Tokenizer.fromMetadata(md);
    expect(tok.kind).toBe('spm');
    expect(tok.vocabSize).toBe(512);
    expect(tok.tokenize('Once upon a time')).toEqual(loadTokenizer(STORIES).tokenize('Once upon a time'));
  });

  it('names the missing or malformed field', () => {
    const md = inspectGGUF(vocabFile('gpt-2')).metadata;
    expect(() => Tokenizer.fromMetadata({})).toThrow(/tokenizer\.ggml\.model is missing/);
    expect(() => Tokenizer.fromMetadata({ ...md, 'tokenizer.ggml.model': 't5' })).toThrow(/unsupported tokenizer model 't5'/);
    expect(() => Tokenizer.fromMetadata({ ...md, 'tokenizer.ggml.pre': 'no-such-pre' })).toThrow(/unsupported pre-tokenizer 'no-such-pre'/);
    expect(() => Tokenizer.fromMetadata({ ...md, 'tokenizer.ggml.tokens': 'abc' })).toThrow(/tokenizer\.ggml\.tokens must be an array/);
    expect(() => Tokenizer.fromMetadata({ ...md, 'tokenizer.ggml.merges': undefined as never })).toThrow(/merges is missing/);
    expect(() => Tokenizer.fromMetadata({ ...md, 'tokenizer.ggml.bos_token_id': 'x' })).toThrow(/bos_token_id must be a non-negative integer/);
    expect(() => Tokenizer.fromMetadata(null as never)).toThrow(/metadata must be an object/);
  });
});

describe('streaming decoder', () => {
  it('holds a character split over byte tokens until it is whole (SPM byte fallback)', () => {
    const tok = loadTokenizer(STORIES); // 512 tokens: most non-ASCII falls back to <0xXX>
    const ids = tok.tokenize('🦙 über', { addSpecial: false });
    expect(ids.length).toBeGreaterThan(6);
    const d = tok.createDecoder();
    const pieces = ids.map((id) => d.push(id));
    expect(pieces.join('')).not.toContain('\uFFFD');
    expect(pieces.join('') + d.flush()).toBe('🦙 über');
    expect(pieces.filter((p) => p === '').length).toBeGreaterThan(0); // some pushes had to wait
  });

  it('holds spaces that the BPE clean-up may still remove', () => {
    const tok = loadTokenizer(vocabFile('gpt-2'));
    expect(tok.cleanSpaces).toBe(true);
    const ids = tok.tokenize('Hello , world !', { addSpecial: false });
    const d = tok.createDecoder();
    const streamed = ids.map((id) => d.push(id)).join('') + d.flush();
    expect(streamed).toBe(tok.detokenize(ids));
    expect(streamed).toBe('Hello, world!');
  });

  it('drops a leading BOS with removeSpecial', () => {
    const tok = loadTokenizer(vocabFile('llama-spm'));
    const ids = tok.tokenize('Hi there');
    const d = tok.createDecoder({ removeSpecial: true });
    expect(ids.map((id) => d.push(id)).join('') + d.flush()).toBe(tok.detokenize(ids, { removeSpecial: true }));
  });
});
