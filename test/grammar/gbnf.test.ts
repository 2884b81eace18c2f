// GBNF parser and byte-level recognizer: syntax, errors with line/column, UTF-8 classes.
import { describe, expect, it } from 'vitest';
import { SparrowError } from '../../src/errors.js';
import { lowerGrammar, parseGbnf, utf8Sequences } from '../../src/grammar/gbnf.js';
import { Recognizer } from '../../src/grammar/engine.js';

const rec = (g: string) => new Recognizer(lowerGrammar(parseGbnf(g)));
const enc = (s: string) => new TextEncoder().encode(s);
const accepts = (g: string, s: string) => {
  const r = rec(g);
  const st = r.run(r.initial, enc(s));
  return st >= 0 && r.accepting(st);
};

describe('GBNF', () => {
  it('parses rules, alternation, grouping, repetition, classes, literals and comments', () => {
    const g = `# a comment
root ::= greeting ("," ws name)* "!"?   # trailing comment
greeting ::= "hi" | "hello"
name ::= [A-Z] [a-z]{1,5}
ws ::= [ \\t]*`;
    expect(accepts(g, 'hi')).toBe(true);
    expect(accepts(g, 'hello, Bob,  Alice!')).toBe(true);
    expect(accepts(g, 'hello, Bobbbbbb')).toBe(false);
    expect(accepts(g, 'hello,bob')).toBe(false);
    expect(accepts(g, 'hey')).toBe(false);
  });

  it('bounded repetition {m}, {m,}, {m,n}', () => {
    expect(accepts('root ::= "a"{3}', 'aaa')).toBe(true);
    expect(accepts('root ::= "a"{3}', 'aa')).toBe(false);
    expect(accepts('root ::= "a"{2,}', 'aaaaaaa')).toBe(true);
    expect(accepts('root ::= "a"{2,}', 'a')).toBe(false);
    expect(accepts('root ::= "a"{0,2} "b"', 'aab')).toBe(true);
    expect(accepts('root ::= "a"{0,2} "b"', 'aaab')).toBe(false);
  });

  it('escapes, negated classes, . and non-ASCII (UTF-8 split across bytes)', () => {
    expect(accepts('root ::= "\\x41\\u00e9\\U0001F600\\n"', 'Aé😀\n')).toBe(true);
    expect(accepts('root ::= [^a-z]+', 'ABC😀é')).toBe(true);
    expect(accepts('root ::= [^a-z]+', 'ABcD')).toBe(false);
    expect(accepts('root ::= [à-ö]', 'é')).toBe(true);
    expect(accepts('root ::= [à-ö]', 'ø')).toBe(false);
    expect(accepts('root ::= .{3}', '中a😀')).toBe(true);
    expect(accepts('root ::= [\\]\\-]', ']')).toBe(true);
    // A prefix of a multi-byte character is alive; an invalid continuation is dead.
    const r = rec('root ::= "é"');
    expect(r.run(r.initial, Uint8Array.of(0xc3))).toBeGreaterThanOrEqual(0);
    expect(r.run(r.initial, Uint8Array.of(0xc3, 0x80))).toBe(-1);
  });

  it('utf8Sequences covers exactly the encodings of a codepoint range', () => {
    const rand = (n: number) => Math.floor(Math.random() * n);
    for (let trial = 0; trial < 200; trial++) {
      let a = rand(0x110000);
      let b = rand(0x110000);
      if (a > b) [a, b] = [b, a];
      if (b - a > 5000) b = a + rand(5000);
      const seqs = utf8Sequences(a, b);
      for (let k = 0; k < 30; k++) {
        const cp = rand(0x110000);
        if (cp >= 0xd800 && cp <= 0xdfff) continue;
        const bytes = new TextEncoder().encode(String.fromCodePoint(cp));
        const hit = seqs.some((s) => s.length === bytes.length && s.every(([lo, hi], i) => bytes[i]! >= lo && bytes[i]! <= hi));
        expect(hit, `cp ${cp} in [${a}, ${b}]`).toBe(cp >= a && cp <= b);
        const mid = a + rand(b - a + 1);
        if (mid >= 0xd800 && mid <= 0xdfff) continue;
        const mb = new TextEncoder().encode(String.fromCodePoint(mid));
        expect(seqs.some((s) => s.length === mb.length && s.every(([lo, hi], i) => mb[i]! >= lo && mb[i]! <= hi))).toBe(true);
      }
    }
  });

  it('reports errors with line and column', () => {
    const cases: Array<[string, RegExp]> = [
      ['root ::= "abc', /line 1, column 10: unterminated string literal/],
      ['root ::= "a"\nfoo ::= [a-', /line 2, column 9: unterminated character class/],
      ['root ::= bar', /line 1, column 10: undefined rule 'bar'/],
      ['root ::= ( "a" ', /line 1, column 10: unmatched '\('/],
      ['root = "a"', /line 1, column 6: expected '::='/],
      ['item ::= "a"', /no 'root' rule/],
      ['root ::= "a"{3,1}', /line 1, column 13: repetition \{3,1\}: max is below min/],
      ['root ::= "\\q"', /line 1, column 11: unknown escape/],
      ['root ::= root "a"', /left recursion/],
      ['root ::= "a"\nroot ::= "b"', /line 2, column 1: rule 'root' is defined twice/],
    ];
    for (const [src, re] of cases) {
      let err: unknown;
      try {
        rec(src);
      } catch (e) {
        err = e;
      }
      expect(err, src).toBeInstanceOf(SparrowError);
      expect((err as SparrowError).code).toBe('ERR_GRAMMAR_SYNTAX');
      expect((err as Error).message, src).toMatch(re);
    }
  });

  it('the DFA (cached transitions) agrees with the plain stack recognizer on random strings', () => {
    const g = `root ::= obj
obj ::= "{" ( pair ( "," pair )* )? "}"
pair ::= key ":" val
key ::= [a-c]{1,2}
val ::= [0-9]+ | obj | "\\"" [^"]* "\\""`;
    const r = rec(g);
    const alphabet = ['{', '}', ',', ':', 'a', 'b', 'c', '1', '"', 'é', 'x'];
    for (let i = 0; i < 500; i++) {
      let s = '';
      const n = Math.floor(Math.random() * 14);
      for (let k = 0; k < n; k++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
      const bytes = enc(s);
      const st = r.run(r.initial, bytes);
      expect(st >= 0 && r.accepting(st), s).toBe(r.referenceAccepts(bytes));
    }
    expect(accepts(g, '{a:1,bc:{c:"hé"}}')).toBe(true);
  });
});

describe('hostile grammars and schemas', () => {
  it('refuses grammars that expand too far, and deep nesting, with SparrowErrors', async () => {
    const { compileGrammar } = await import('../../src/grammar/index.js');
    const vocab = { vocabSize: 2, piece: (id: number) => Uint8Array.of(0x61 + id), isEog: () => false };
    expect(() => compileGrammar(vocab, { grammar: 'root ::= ("a"{10000}){10000}' })).toThrow(expect.objectContaining({ code: 'ERR_GRAMMAR_TOO_LARGE' }));
    let deep: object = { type: 'string' };
    for (let i = 0; i < 20000; i++) deep = { type: 'array', items: deep };
    expect(() => compileGrammar(vocab, { jsonSchema: deep })).toThrow(SparrowError);
    const nested = 'root ::= ' + '('.repeat(20000) + '"a"' + ')'.repeat(20000);
    expect(() => compileGrammar(vocab, { grammar: nested })).toThrow(SparrowError);
    // Still healthy afterwards.
    expect(compileGrammar(vocab, { grammar: 'root ::= "ab"' }).accepts('ab')).toBe(true);
  });
});
