// JSON Schema -> grammar, checked against ajv: strings the grammar generates at random
// must validate, and the grammar must reject what ajv rejects among perturbed strings.
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { SparrowError } from '../../src/errors.js';
import { lowerGrammar, parseGbnf } from '../../src/grammar/gbnf.js';
import { Recognizer } from '../../src/grammar/engine.js';
import { schemaToGbnf } from '../../src/grammar/schema.js';
import { SCHEMAS, UNSUPPORTED } from './corpus.js';
import { mulberry, randomSentence } from './helpers.js';

const ajv = new Ajv2020.default({ strict: false, allErrors: false });
addFormats.default(ajv);

/** ajv refuses draft-4's `id` (an identifier, ignored by the compiler): drop it for ajv. */
function forAjv(s: unknown): unknown {
  if (Array.isArray(s)) return s.map(forAjv);
  if (!s || typeof s !== 'object') return s;
  return Object.fromEntries(Object.entries(s).filter(([k, v]) => !(k === 'id' && typeof v === 'string')).map(([k, v]) => [k, forAjv(v)]));
}

describe('JSON schema compiler', () => {
  it('compiles the real-world-style corpus; every generated output validates with ajv', () => {
    const rand = mulberry(1234);
    let compiled = 0;
    let validated = 0;
    let mutantsAccepted = 0;
    let mutantsRejected = 0;
    let rejectedInvalid = 0;
    for (const [name, schema] of Object.entries(SCHEMAS)) {
      const r = new Recognizer(lowerGrammar(parseGbnf(schemaToGbnf(schema))));
      compiled++;
      const validate = ajv.compile(forAjv(schema) as object);
      let produced = 0;
      for (let k = 0; k < 12; k++) {
        const bytes = randomSentence(r, rand);
        if (!bytes) continue;
        produced++;
        const text = new TextDecoder().decode(bytes);
        let value: unknown;
        expect(() => (value = JSON.parse(text)), `${name}: ${text}`).not.toThrow();
        const ok = validate(value);
        expect(ok, `${name}: ${text}\n${JSON.stringify(validate.errors)}`).toBe(true);
        validated++;
        // Mutants: whatever the grammar still accepts must parse and validate.
        for (let m = 0; m < 20; m++) {
          const chars = [...text];
          const at = Math.floor(rand() * (chars.length + 1));
          const pick = ['"', ',', '}', ']', '0', '-', 'a', ' ', '\\', 'é', '{', '[', 'e', '.'][Math.floor(rand() * 14)]!;
          const op = rand();
          if (op < 0.33) chars.splice(at, 1);
          else if (op < 0.66) chars.splice(at, 0, pick);
          else chars.splice(at, 1, pick);
          const mutant = chars.join('');
          const bytes2 = new TextEncoder().encode(mutant);
          const st = r.run(r.initial, bytes2);
          if (st >= 0 && r.accepting(st)) {
            mutantsAccepted++;
            let v2: unknown;
            expect(() => (v2 = JSON.parse(mutant)), `${name}: accepted mutant ${mutant}`).not.toThrow();
            expect(validate(v2), `${name}: accepted mutant ${mutant}`).toBe(true);
          } else {
            mutantsRejected++;
            let parsed = true;
            try {
              parsed = validate(JSON.parse(mutant)) as boolean;
            } catch {
              parsed = false;
            }
            if (!parsed) rejectedInvalid++;
          }
        }
      }
      expect(produced, name).toBeGreaterThan(0);
    }
    expect(compiled).toBe(Object.keys(SCHEMAS).length);
    expect(validated).toBeGreaterThan(100);
    // Both sides are exercised: some mutants stay valid, most become invalid and are rejected.
    expect(mutantsAccepted).toBeGreaterThan(50);
    expect(rejectedInvalid).toBeGreaterThan(500);
    expect(mutantsRejected).toBeGreaterThanOrEqual(rejectedInvalid);
  });

  it('accepts valid documents written by hand and rejects invalid ones (agrees with ajv)', () => {
    const schema = {
      type: 'object',
      properties: {
        id: { type: 'integer', minimum: -5, maximum: 1234 },
        score: { type: 'number', minimum: -2, maximum: 3 },
        name: { type: 'string', minLength: 2, maxLength: 4 },
        kind: { enum: ['a', 'b', 3] },
        when: { type: 'string', format: 'date' },
        t: { type: 'string', format: 'time' },
        u: { type: 'string', format: 'uuid' },
        code: { type: 'string', pattern: '^[A-Z]{2}-\\d{3}$' },
        tags: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 2 },
      },
      required: ['id'],
      additionalProperties: false,
    };
    const r = new Recognizer(lowerGrammar(parseGbnf(schemaToGbnf(schema))));
    const validate = ajv.compile(schema);
    const docs = [
      '{"id":0}', '{"id":-5}', '{"id":-6}', '{"id":1234}', '{"id":1235}', '{"id":01}', '{"id":12.5}',
      '{"id":1,"score":3}', '{"id":1,"score":3.0}', '{"id":1,"score":3.01}', '{"id":1,"score":-2.0}', '{"id":1,"score":-2.5}', '{"id":1,"score":-1.99}',
      '{"id":1,"name":"ab"}', '{"id":1,"name":"a"}', '{"id":1,"name":"abcde"}', '{"id":1,"name":"a\\u00e9c"}',
      '{"id":1,"kind":"a"}', '{"id":1,"kind":3}', '{"id":1,"kind":"c"}',
      '{"id":1,"when":"2024-02-29"}', '{"id":1,"when":"2023-02-29"}', '{"id":1,"when":"2000-02-29"}', '{"id":1,"when":"1900-02-29"}', '{"id":1,"when":"2023-04-31"}',
      '{"id":1,"t":"23:59:59Z"}', '{"id":1,"t":"24:00:00Z"}', '{"id":1,"t":"12:00:00"}', '{"id":1,"t":"12:00:00.5+02:00"}',
      '{"id":1,"u":"123e4567-e89b-12d3-a456-426614174000"}', '{"id":1,"u":"123e4567-e89b-12d3-a456-42661417400"}',
      '{"id":1,"code":"AB-123"}', '{"id":1,"code":"AB-12"}', '{"id":1,"code":"ab-123"}',
      '{"id":1,"tags":[]}', '{"id":1,"tags":["x"]}', '{"id":1,"tags":["x","y","z"]}',
      '{"id":1,"extra":1}', '{"name":"ab"}', '{ "id" : 7 , "name" : "abc" }',
    ];
    for (const d of docs) {
      const st = r.run(r.initial, new TextEncoder().encode(d));
      const ours = st >= 0 && r.accepting(st);
      const theirs = validate(JSON.parse(d.replace('01}', '1}')));
      if (ours) expect(theirs, `grammar accepts an invalid document: ${d}`).toBe(true);
      if (d.includes('01}')) expect(ours).toBe(false);
      else expect(ours, d).toBe(theirs);
    }
  });

  it('corpus coverage: the supported schemas compile, the others fail naming the keyword', () => {
    let ok = 0;
    for (const schema of Object.values(SCHEMAS)) {
      schemaToGbnf(schema);
      ok++;
    }
    for (const [name, { schema, keyword }] of Object.entries(UNSUPPORTED)) {
      let err: unknown;
      try {
        schemaToGbnf(schema);
      } catch (e) {
        err = e;
      }
      expect((err as SparrowError)?.code, name).toBe('ERR_SCHEMA_UNSUPPORTED');
      expect((err as Error).message, name).toMatch(keyword);
    }
    const total = ok + Object.keys(UNSUPPORTED).length;
    console.log(`schema corpus: ${ok} of ${total} compile`);
    expect(ok).toBe(Object.keys(SCHEMAS).length);
  });

  it('an extra key cannot spell a declared key with escapes', () => {
    const schema = { type: 'object', properties: { name: { type: 'string' } }, additionalProperties: true };
    const r = new Recognizer(lowerGrammar(parseGbnf(schemaToGbnf(schema))));
    const ok = (d: string) => {
      const st = r.run(r.initial, new TextEncoder().encode(d));
      return st >= 0 && r.accepting(st);
    };
    expect(ok('{"name":"x","other":5}')).toBe(true);
    expect(ok('{"name":"x","nam":5,"names":[1]}')).toBe(true);
    expect(ok('{"name":"x","\\u006eame":5}')).toBe(false);
    expect(ok('{"name":"x","name":5}')).toBe(false);
    expect(ok('{"n\\u0061me":5}')).toBe(false);
    expect(ok('{"nx\\u0061":5}')).toBe(true);
  });

  it('ignores annotations and vendor keys, refuses every validation keyword it does not enforce', () => {
    const accepts = (schema: unknown, d: string) => {
      const r = new Recognizer(lowerGrammar(parseGbnf(schemaToGbnf(schema))));
      const st = r.run(r.initial, new TextEncoder().encode(d));
      return st >= 0 && r.accepting(st);
    };
    const plain = { type: 'object', properties: { a: { type: 'integer', maximum: 3 } }, required: ['a'], additionalProperties: false };
    const decorated = {
      ...plain, id: 'x', self: {}, _format: 'f', 'x-any': [1], readonly: true, name: 'n', links: [], example: {}, $comment: 'c',
      deprecated: false, contentEncoding: 'base64', $anchor: 'top', $vocabulary: {}, nullable: false,
    };
    expect(schemaToGbnf(decorated)).toBe(schemaToGbnf(plain));
    for (const k of ['multipleOf', 'contains', 'propertyNames',
      'if', 'then', 'else', 'not', 'dependentSchemas', 'unevaluatedProperties', 'unevaluatedItems', 'minContains', 'maxContains',
      '$recursiveRef', '$dynamicRef']) {
      expect(() => schemaToGbnf({ ...plain, [k]: {} }), k).toThrow(new RegExp(`unsupported keyword "\\${k}"|unsupported keyword "${k}"`));
    }
    // Draft 4: exclusiveMinimum/exclusiveMaximum are booleans beside minimum/maximum.
    const d4 = { type: 'integer', minimum: 3, exclusiveMinimum: true, maximum: 5, exclusiveMaximum: false };
    expect(['3', '4', '5', '6'].map((d) => accepts(d4, d))).toEqual([false, true, true, false]);
    const d4b = { type: 'integer', minimum: 3, exclusiveMinimum: false, maximum: 5, exclusiveMaximum: true };
    expect(['2', '3', '4', '5'].map((d) => accepts(d4b, d))).toEqual([false, true, true, false]);
    expect(() => schemaToGbnf({ type: 'integer', exclusiveMinimum: true })).toThrow(/exclusiveMinimum: true needs minimum/);
  });

  it('repetitions of patterns that match the empty string (no left recursion; same language as RegExp)', () => {
    const patterns = ['^(a*)*$', '^([ab .-]*)*\\/?$', '^(a?b?)+c$', '^((ab)?|c)*$', '^(a|)*$', '^(|a{0,2})+b$', '^(a*){2,}b?$', '^((a*)(b?))*$', '^(a{0,0})*b$', '(c*)+$'];
    const alphabet = ['a', 'b', 'c', '/', ' '];
    for (const p of patterns) {
      const r = new Recognizer(lowerGrammar(parseGbnf(schemaToGbnf({ type: 'string', pattern: p }))));
      const re = new RegExp(p, 'u');
      const check = (str: string) => {
        const st = r.run(r.initial, new TextEncoder().encode(JSON.stringify(str)));
        expect(st >= 0 && r.accepting(st), `${p} on ${JSON.stringify(str)}`).toBe(re.test(str));
      };
      const words = [''];
      for (let len = 0; len < 5; len++) {
        for (const w of words.splice(0)) {
          check(w);
          for (const c of alphabet) words.push(w + c);
        }
      }
      for (const w of words) check(w);
    }
  });

  it('uri, hostname, ipv4, ipv6: what the grammar accepts, ajv-formats accepts', () => {
    const docs: Record<string, string[]> = {
      uri: ['https://example.com/a/b?x=1#top', 'mailto:someone@example.com', 'urn:isbn:0451450523', 'http://h:8080', 'x://a%20b/%7e',
        'example.com', '/relative/path', 'http://exa mple.com', 'http://a/%zz', 'https://exa"mple.com', '1http://x', 'http:', ':x'],
      hostname: ['example.com', 'a', 'a-b.c0', 'xn--bcher-kva.example', '-a.com', 'a-.com', 'a..b', 'a_b.com', '', 'a.b.c.d.e.f'],
      ipv4: ['0.0.0.0', '255.255.255.255', '192.168.1.10', '256.1.1.1', '01.2.3.4', '1.2.3', '1.2.3.4.5'],
      ipv6: ['::', '::1', '1::', '2001:db8::8a2e:370:7334', '2001:0db8:0000:0000:0000:ff00:0042:8329', '1:2:3:4:5:6:7::', '1::2::3',
        '12345::', '1:2:3:4:5:6:7:8:9', 'g::1', ':1'],
    };
    for (const [format, list] of Object.entries(docs)) {
      const schema = { type: 'string', format };
      const r = new Recognizer(lowerGrammar(parseGbnf(schemaToGbnf(schema))));
      const validate = ajv.compile(schema);
      let accepted = 0;
      for (const d of list) {
        const st = r.run(r.initial, new TextEncoder().encode(JSON.stringify(d)));
        const ours = st >= 0 && r.accepting(st);
        if (ours) {
          accepted++;
          expect(validate(d), `${format}: grammar accepts ${d}`).toBe(true);
        } else if (!['a.b.c.d.e.f', '/relative/path', 'http:'].includes(d)) {
          // The grammar is narrower than the format only where noted; elsewhere it agrees.
          expect(validate(d), `${format}: grammar rejects ${d}`).toBe(false);
        }
      }
      expect(accepted, format).toBeGreaterThanOrEqual(3);
    }
    // Lengths beside a format: kept where the format's lengths satisfy them, else refused.
    for (const [format, lengths] of Object.entries({ date: [10, 10], time: [9, 21], 'date-time': [20, 32], uuid: [36, 36], ipv4: [7, 15], ipv6: [2, 39], hostname: [1, 204] })) {
      const [lo, hi] = lengths as [number, number];
      const r = new Recognizer(lowerGrammar(parseGbnf(schemaToGbnf({ type: 'string', format, minLength: lo, maxLength: hi }))));
      // The grammar's shortest and longest outputs are within the lengths claimed.
      const rand = mulberry(7);
      for (let k = 0; k < 40; k++) {
        const bytes = randomSentence(r, rand);
        if (!bytes) continue;
        const v = JSON.parse(new TextDecoder().decode(bytes)) as string;
        expect([...v].length, `${format}: ${v}`).toBeGreaterThanOrEqual(lo);
        expect([...v].length, `${format}: ${v}`).toBeLessThanOrEqual(hi);
      }
      expect(() => schemaToGbnf({ type: 'string', format, maxLength: hi - 1 })).toThrow(/together with minLength\/maxLength/);
    }
    expect(() => schemaToGbnf({ type: 'string', format: 'uri', maxLength: 100 })).toThrow(/format "uri" together with minLength\/maxLength/);
  });

  it('draft-4 tuples (items array + additionalItems) and dependencies, by hand', () => {
    const accepts = (schema: unknown, d: string) => {
      const r = new Recognizer(lowerGrammar(parseGbnf(schemaToGbnf(schema))));
      const st = r.run(r.initial, new TextEncoder().encode(d));
      return st >= 0 && r.accepting(st);
    };
    const minP = { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, required: ['a', 'a'], minProperties: 2 };
    expect(['{"a":1}', '{"a":1,"b":2}'].map((d) => accepts(minP, d))).toEqual([false, true]);
    const enums = { allOf: [{ enum: ['a', 'b', { x: 1, y: 2 }, 3] }, { enum: ['b', 'c', { y: 2, x: 1 }, 3.0] }] };
    expect(['"a"', '"b"', '"c"', '{"x":1,"y":2}', '3'].map((d) => accepts(enums, d))).toEqual([false, true, false, true, true]);
    expect(() => schemaToGbnf({ allOf: [{ enum: ['a'] }, { enum: ['b'] }] })).toThrow(/no enum value in common/);
    expect(accepts({ type: 'array', uniqueItems: false }, '[1,1]')).toBe(true);
    expect(accepts({ uniqueItems: true, maxItems: 1 }, '[1]')).toBe(true);
    expect(() => schemaToGbnf({ uniqueItems: true })).toThrow(/keyword "uniqueItems"/);
    const tuple = { type: 'array', items: [{ type: 'integer' }, { type: 'string' }], additionalItems: false };
    expect(['[]', '[1]', '[1,"a"]', '[1,"a",2]', '["a"]'].map((d) => accepts(tuple, d))).toEqual([true, true, true, false, false]);
    const tupleRest = { type: 'array', items: [{ type: 'integer' }], additionalItems: { type: 'boolean' } };
    expect(['[1,true,false]', '[1,2]'].map((d) => accepts(tupleRest, d))).toEqual([true, false]);
    expect(accepts({ type: 'array', items: { type: 'integer' }, additionalItems: false }, '[1,2,3]')).toBe(true); // no effect beside a schema
    // Array dependencies: the dependencies are made required whenever the property may appear.
    const dep = { type: 'object', properties: { card: { type: 'string' }, billing: { type: 'string' } }, dependencies: { card: ['billing'] } };
    expect(['{}', '{"billing":"x"}', '{"card":"1"}', '{"card":"1","billing":"x"}'].map((d) => accepts(dep, d))).toEqual([false, true, false, true]);
    // A schema dependency applies when its property is required, is refused on an optional one.
    const depS = { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' } }, required: ['a'], dependencies: { a: { properties: { b: { maximum: 3 } } } } };
    expect(['{"a":1,"b":3}', '{"a":1,"b":4}'].map((d) => accepts(depS, d))).toEqual([true, false]);
    expect(() => schemaToGbnf({ ...depS, required: [] })).toThrow(/dependencies: a schema for the optional property "a"/);
  });

  it('pattern together with minLength/maxLength: the same strings as RegExp plus the length check', () => {
    const cases: Array<[string, number, number]> = [
      ['^[ab]+$', 2, 4], ['^a[bc]*/$', 3, 5], ['^[a-c]{1,3}$', 2, 6], ['^a', 2, 3], ['c$', 0, 2], ['^(ab|ca)[ /]*$', 3, 4], ['^[^c]*$', 1, 2],
    ];
    const alphabet = ['a', 'b', 'c', '/', ' '];
    for (const [p, minLength, maxLength] of cases) {
      const r = new Recognizer(lowerGrammar(parseGbnf(schemaToGbnf({ type: 'string', pattern: p, minLength, maxLength }))));
      const re = new RegExp(p, 'u');
      const words = [''];
      for (let len = 0; len <= 6; len++) {
        for (const w of words.splice(0)) {
          const st = r.run(r.initial, new TextEncoder().encode(JSON.stringify(w)));
          const want = re.test(w) && w.length >= minLength && w.length <= maxLength;
          expect(st >= 0 && r.accepting(st), `${p} {${minLength},${maxLength}} on ${JSON.stringify(w)}`).toBe(want);
          if (len < 6) for (const c of alphabet) words.push(w + c);
        }
      }
    }
    expect(() => schemaToGbnf({ type: 'string', pattern: '^a+b+$', maxLength: 5 })).toThrow(/together with minLength\/maxLength/);
    expect(() => schemaToGbnf({ type: 'string', pattern: 'a', maxLength: 5 })).toThrow(/together with minLength\/maxLength/);
    expect(() => schemaToGbnf({ type: 'string', pattern: '^a{3}$', maxLength: 2 })).toThrow(/no string matching pattern/);
  });

  it('long string lengths: exact at the bounds, one rule per distinct bound', () => {
    const schema = { type: 'object', properties: { a: { type: 'string', minLength: 3, maxLength: 32767 }, b: { type: 'string', minLength: 3, maxLength: 32767 } } };
    const gbnf = schemaToGbnf(schema);
    expect(gbnf.match(/json-lchar\{3,32767\}/g)).toHaveLength(1);
    const r = new Recognizer(lowerGrammar(parseGbnf(gbnf)));
    const ok = (d: string) => {
      const st = r.run(r.initial, new TextEncoder().encode(d));
      return st >= 0 && r.accepting(st);
    };
    const s = (n: number, c = 'x') => JSON.stringify(c.repeat(n));
    expect(ok(`{"a":${s(32767)},"b":${s(3)}}`)).toBe(true);
    expect(ok(`{"a":${s(32768)}}`)).toBe(false);
    expect(ok(`{"a":${s(2)}}`)).toBe(false);
    expect(ok(`{"b":${s(32767, 'é')}}`)).toBe(true); // characters, not bytes
    expect(ok(`{"b":"${'\\n'.repeat(32767)}"}`)).toBe(true);
    expect(ok(`{"b":"${'\\n'.repeat(32768)}"}`)).toBe(false);
    expect(() => schemaToGbnf({ type: 'string', maxLength: 65537 })).toThrow(/string lengths above 65536/);
    // A surrogate pair written as two \\u escapes is one character: never counted as two.
    const two = new Recognizer(lowerGrammar(parseGbnf(schemaToGbnf({ type: 'string', minLength: 2, maxLength: 2 }))));
    const ok2 = (d: string) => {
      const st = two.run(two.initial, new TextEncoder().encode(d));
      return st >= 0 && two.accepting(st);
    };
    expect(ok2('"\\ud83d\\ude00"')).toBe(false);
    expect(ok2('"\\u00e9\\uffff"')).toBe(true);
    expect(ok2('"😀x"')).toBe(true);
  });

  it('follows $ref through JSON pointers, $id and anchors; refuses what it cannot resolve', () => {
    const accepts = (schema: unknown, d: string) => {
      const r = new Recognizer(lowerGrammar(parseGbnf(schemaToGbnf(schema))));
      const st = r.run(r.initial, new TextEncoder().encode(d));
      return st >= 0 && r.accepting(st);
    };
    // Draft 7: a plain-name fragment $id names a schema; an embedded $id changes the base of the refs inside it.
    const d7 = {
      definitions: {
        small: { $id: '#small', type: 'integer', maximum: 5 },
        other: { $id: 'http://other.example/o.json', definitions: { small: { type: 'string' } }, properties: { s: { $ref: '#/definitions/small' } } },
      },
      type: 'object',
      properties: { n: { $ref: '#small' }, o: { $ref: 'http://other.example/o.json' }, m: { $ref: '#/definitions/small' } },
      additionalProperties: false,
    };
    expect(accepts(d7, '{"n":5}')).toBe(true);
    expect(accepts(d7, '{"n":6}')).toBe(false);
    expect(accepts(d7, '{"m":6}')).toBe(false);
    expect(accepts(d7, '{"o":{"s":"x"}}')).toBe(true);
    expect(accepts(d7, '{"o":{"s":1}}')).toBe(false);
    const refused: Array<[unknown, RegExp]> = [
      [{ $ref: 'https://example.com/x.json' }, /only references within this document/],
      [{ $ref: '#nowhere' }, /anchor/],
      [{ definitions: { a: { $id: 'a.json', type: 'string' }, b: { $id: 'a.json', type: 'integer' } }, $ref: 'a.json' }, /two schemas/],
    ];
    for (const [s, re] of refused) {
      expect(() => schemaToGbnf(s)).toThrow(re);
      try {
        schemaToGbnf(s);
      } catch (e) {
        expect((e as SparrowError).code).toBe('ERR_SCHEMA_UNSUPPORTED');
      }
    }
    expect(() => schemaToGbnf({ $ref: '#/definitions/missing', definitions: {} })).toThrow(/points nowhere/);
  });

  it('names unsupported keywords in a SparrowError', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ type: 'object', dependentSchemas: { a: {} } }, /keyword "dependentSchemas"/],
      [{ type: 'object', properties: { xa: {} }, patternProperties: { '^x': {} } }, /patternProperties matching the declared or required property "xa"/],
      [{ type: 'string', format: 'idn-hostname' }, /format "idn-hostname"/],
      [{ not: { type: 'string' } }, /keyword "not"/],
      [{ type: 'number', multipleOf: 3 }, /keyword "multipleOf"/],
      [{ type: 'array', uniqueItems: true }, /keyword "uniqueItems"/],
      [{ type: 'string', pattern: '(a)\\1' }, /backreferences/],
      [{ type: 'string', pattern: 'a(?=b)' }, /lookaround/],
      [{ $ref: 'https://example.com/x.json' }, /\$ref/],
      [{ type: 'number', minimum: 0.5 }, /non-integral/],
      [{ properties: { a: { if: {} } } }, /#\/properties\/a: unsupported keyword "if"/],
      [{ allOf: [{ properties: { a: {} } }], additionalProperties: false }, /additionalProperties of one part would apply to property "a"/],
    ];
    for (const [s, re] of bad) {
      let err: unknown;
      try {
        schemaToGbnf(s);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SparrowError);
      expect((err as SparrowError).code).toBe('ERR_SCHEMA_UNSUPPORTED');
      expect((err as Error).message).toMatch(re);
    }
  });
});
