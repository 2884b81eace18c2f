/**
 * Structured-output cost: schema compile time and the per-token mask cost on a 150k-class
 * byte-level BPE vocabulary, while "generating" realistic JSON documents token by token.
 *
 *   npm run build:ts && node --expose-gc dist/bench/grammar.js [--shared ../shared] [--vocab merged|deepseek-llm|gpt-2] [--reps 3]
 *
 * Vocabulary: `merged` (the default) is a real 150k-class byte-level BPE vocabulary made of
 * the tokens of llama.cpp's deepseek-llm (102,400), falcon, gpt-2, llama-spm and bert-bge vocab files, deduplicated
 * then filled up to 151,936 tokens (Qwen 2's size) with the project's synthetic byte-level BPE
 * tokens (models/vocab.ts): about 137k real tokens, 15k synthetic. The documents are tokenized by deepseek-llm's
 * own BPE (its ids are kept as they are in the merged vocabulary).
 *
 * Per token the mask step is what a generation pays: the allowed set for the current state
 * (computed, or found in the per-state cache) applied to a full logits vector, and the
 * grammar advanced by the token. "cold" is a freshly compiled grammar (a new schema on its
 * first request); "warm" the same compiled grammar on a later request (a server caching
 * compiled schemas). Reports p50 / p99 / max in microseconds, and the compile times.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGrammar, type VocabSource } from '../src/grammar/index.js';
import { loadTokenizer, type Tokenizer } from '../src/tokenizer/index.js';
import { gpt2Vocab } from '../models/vocab.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = [path.resolve(here, '..'), path.resolve(here, '../..')].find((d) => fs.existsSync(path.join(d, 'package.json')))!;
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1]! : dflt;
};
const shared = path.resolve(arg('shared', path.resolve(root, '../shared')));
const which = arg('vocab', 'merged');
const reps = Number(arg('reps', '3'));

const load = (name: string) => loadTokenizer(path.join(shared, 'vocab', `ggml-vocab-${name}.gguf`));

/** The vocabulary the masks run over, and the tokenizer that writes the documents. */
function vocabulary(): { vocab: VocabSource; writer: Tokenizer; label: string } {
  if (which !== 'merged') {
    const t = load(which);
    return { vocab: t, writer: t, label: `${which} (${t.vocabSize} tokens)` };
  }
  const base = load('deepseek-llm');
  const pieces: Uint8Array[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < base.vocabSize; i++) {
    const p = base.piece(i, false);
    pieces.push(p);
    seen.add(Buffer.from(p).toString('latin1'));
  }
  const TARGET = 151_936;
  for (const extra of ['falcon', 'gpt-2', 'llama-spm', 'bert-bge']) {
    const t = load(extra);
    for (let i = 0; i < t.vocabSize && pieces.length < TARGET; i++) {
      const p = t.piece(i, false);
      const key = Buffer.from(p).toString('latin1');
      if (p.length === 0 || seen.has(key)) continue;
      seen.add(key);
      pieces.push(p);
    }
  }
  // Fill up to Qwen 2's size with the project's synthetic byte-level BPE tokens (merges of
  // common words and letter n-grams; see models/vocab.ts), mapped back to bytes.
  const unicodeToByte = new Map<string, number>();
  {
    const bs: number[] = [];
    for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
    for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
    for (let b = 0xae; b <= 0xff; b++) bs.push(b);
    const cs = bs.slice();
    let k = 0;
    for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + k++); }
    bs.forEach((b, i) => unicodeToByte.set(String.fromCodePoint(cs[i]!), b));
  }
  let synthetic = 0;
  for (const tok of gpt2Vocab(TARGET).tokens) {
    if (pieces.length >= TARGET) break;
    const bytes: number[] = [];
    for (const ch of tok) {
      const b = unicodeToByte.get(ch);
      if (b === undefined) { bytes.length = 0; break; }
      bytes.push(b);
    }
    const p = Uint8Array.from(bytes);
    const key = Buffer.from(p).toString('latin1');
    if (p.length === 0 || seen.has(key)) continue;
    seen.add(key);
    pieces.push(p);
    synthetic++;
  }
  const real = pieces.length - synthetic;
  const vocab: VocabSource = {
    vocabSize: pieces.length,
    piece: (id) => pieces[id]!,
    isEog: (id) => id < base.vocabSize && base.isEog(id),
  };
  return {
    vocab,
    writer: base,
    label: `${pieces.length} tokens: ${real} real (deepseek-llm + falcon + gpt-2 + llama-spm + bert-bge, deduplicated) + ${synthetic} synthetic byte-level BPE`,
  };
}

const SCHEMAS: Record<string, { schema: object; docs: unknown[] }> = {
  weatherTool: {
    schema: {
      type: 'object',
      properties: {
        location: { type: 'string' },
        unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
        days: { type: 'integer', minimum: 1, maximum: 14 },
      },
      required: ['location', 'unit'],
      additionalProperties: false,
    },
    docs: [{ location: 'San Francisco, California, United States', unit: 'fahrenheit', days: 5 }, { location: 'Zürich, Schweiz', unit: 'celsius' }],
  },
  person: {
    schema: {
      type: 'object',
      properties: {
        firstName: { type: 'string' },
        lastName: { type: 'string' },
        age: { type: 'integer', minimum: 0, maximum: 150 },
        email: { type: 'string', format: 'email' },
        birthday: { type: 'string', format: 'date' },
        id: { type: 'string', format: 'uuid' },
        bio: { type: 'string', maxLength: 500 },
      },
      required: ['firstName', 'lastName'],
      additionalProperties: false,
    },
    docs: [
      { firstName: 'Margaret', lastName: 'Hamilton', age: 88, email: 'margaret.hamilton@mit.edu', birthday: '1936-08-17', id: '3f2b8c1e-9a4d-4e6f-b0c2-7d5a1e8f9b3c', bio: 'Led the team that wrote the on-board flight software for the Apollo missions; coined the term "software engineering".' },
      { firstName: 'Grace', lastName: 'Hopper', age: 85, bio: 'Rear admiral, computer scientist, and one of the first programmers of the Harvard Mark I. Her work led to COBOL.' },
    ],
  },
  invoice: {
    schema: {
      type: 'object',
      properties: {
        number: { type: 'string', pattern: '^INV-[0-9]{6}$' },
        date: { type: 'string', format: 'date' },
        customer: { type: 'object', properties: { name: { type: 'string' }, address: { type: 'string' }, vatId: { type: ['string', 'null'] } }, required: ['name'], additionalProperties: false },
        lines: {
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            properties: { sku: { type: 'string' }, description: { type: 'string' }, qty: { type: 'integer', minimum: 1, maximum: 999 }, price: { type: 'number', minimum: 0 } },
            required: ['sku', 'qty', 'price'],
            additionalProperties: false,
          },
        },
        total: { type: 'number', minimum: 0 },
        paid: { type: 'boolean' },
      },
      required: ['number', 'lines', 'total'],
      additionalProperties: false,
    },
    docs: [{
      number: 'INV-004217', date: '2026-11-30',
      customer: { name: 'Acme Widgets GmbH', address: 'Hauptstraße 12, 10115 Berlin, Germany', vatId: 'DE123456789' },
      lines: [
        { sku: 'WID-001', description: 'Standard widget, blue, 20 mm', qty: 120, price: 0.45 },
        { sku: 'WID-017', description: 'Precision widget with stainless steel housing', qty: 12, price: 14.9 },
        { sku: 'SRV-INSTALL', description: 'On-site installation (per hour)', qty: 3, price: 85 },
      ],
      total: 487.8, paid: false,
    }],
  },
  githubIssue: {
    schema: {
      type: 'object',
      properties: {
        title: { type: 'string', minLength: 1, maxLength: 120 },
        body: { type: 'string' },
        labels: { type: 'array', items: { type: 'string' } },
        assignees: { type: 'array', items: { type: 'string', pattern: '^[a-zA-Z0-9-]{1,39}$' } },
        state: { enum: ['open', 'closed'] },
      },
      required: ['title', 'body'],
      additionalProperties: false,
    },
    docs: [{
      title: 'Crash when loading a GGUF file with an empty tensor name',
      body: 'Steps to reproduce:\n1. Download the model.\n2. Run `sparrow run model.gguf`.\n\nExpected: a clear error.\nActual: the process exits with SIGSEGV.\n\nEnvironment: Ubuntu 24.04, Node 22.11, x86-64 (AVX2).',
      labels: ['bug', 'gguf', 'good first issue'], assignees: ['octocat', 'dev-42'], state: 'open',
    }],
  },
  k8sDeployment: {
    schema: {
      type: 'object',
      properties: {
        apiVersion: { const: 'apps/v1' },
        kind: { const: 'Deployment' },
        metadata: { type: 'object', properties: { name: { type: 'string' }, labels: { type: 'object', additionalProperties: { type: 'string' } } }, required: ['name'] },
        spec: {
          type: 'object',
          properties: {
            replicas: { type: 'integer', minimum: 0, maximum: 100 },
            containers: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  name: { type: 'string' },
                  image: { type: 'string' },
                  ports: { type: 'array', items: { type: 'object', properties: { containerPort: { type: 'integer', minimum: 1, maximum: 65535 } }, required: ['containerPort'] } },
                },
                required: ['name', 'image'],
              },
            },
          },
          required: ['containers'],
        },
      },
      required: ['apiVersion', 'kind', 'metadata', 'spec'],
    },
    docs: [{
      apiVersion: 'apps/v1', kind: 'Deployment',
      metadata: { name: 'inference-server', labels: { app: 'sparrow', tier: 'backend' } },
      spec: { replicas: 3, containers: [{ name: 'sparrow', image: 'registry.example.com/sparrow-llm:0.1.0', ports: [{ containerPort: 8080 }] }] },
    }],
  },
};

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function main() {
  const t0 = performance.now();
  const { vocab, writer, label } = vocabulary();
  const tLoad = performance.now() - t0;
  console.log(`vocabulary: ${label} (loaded in ${tLoad.toFixed(0)} ms)`);
  const tTrie = performance.now();
  compileGrammar(vocab, { grammar: 'root ::= "x"' }); // builds the vocabulary trie (once per tokenizer)
  console.log(`token trie: ${(performance.now() - tTrie).toFixed(0)} ms (once per vocabulary)\n`);
  // The setup's garbage (vocabulary files, the trie's scratch) is collected now when the
  // process allows it (node --expose-gc), not in the middle of the first masks.
  (globalThis as { gc?: () => void }).gc?.();

  const logits = new Float32Array(vocab.vocabSize);
  const all = { cold: [] as number[], warm: [] as number[] };
  // CPU time of the process per token (user + system, microseconds): unlike wall time it
  // does not count the time other processes hold the core.
  const cpu = { cold: [] as number[], warm: [] as number[] };
  const rows: string[] = [];
  for (const [name, { schema, docs }] of Object.entries(SCHEMAS)) {
    const compileMs: number[] = [];
    for (let r = 0; r < reps; r++) compileMs.push(compileGrammar(vocab, { jsonSchema: schema }).compileMs);
    compileMs.sort((a, b) => a - b);
    const g = compileGrammar(vocab, { jsonSchema: schema });
    const texts = docs.flatMap((d) => [JSON.stringify(d), JSON.stringify(d, null, 2)]);
    const per = { cold: [] as number[], warm: [] as number[] };
    let tokens = 0;
    for (const phase of ['cold', 'warm'] as const) {
      for (const text of texts) {
        const ids = writer.tokenize(text, { addSpecial: false });
        const m = g.matcher();
        for (const id of ids) {
          for (let i = 0; i < logits.length; i += 4096) logits.fill(0.5, i, Math.min(logits.length, i + 4096));
          const c0 = process.cpuUsage();
          const t = performance.now();
          m.apply(logits);
          m.accept(id);
          const dt = (performance.now() - t) * 1000;
          const c1 = process.cpuUsage(c0);
          cpu[phase].push(c1.user + c1.system);
          if (!(logits[id]! > -Infinity)) throw new Error(`${name}: the mask banned token ${id} of a valid document`);
          per[phase].push(dt);
          all[phase].push(dt);
        }
        if (!m.accepting) throw new Error(`${name}: a valid document did not complete the grammar`);
        if (phase === 'cold') tokens += ids.length;
      }
    }
    const c = per.cold.sort((a, b) => a - b);
    const w = per.warm.sort((a, b) => a - b);
    rows.push(
      `${name.padEnd(14)} ${String(tokens).padStart(6)} ${compileMs[compileMs.length >> 1]!.toFixed(1).padStart(9)}` +
        ` ${pct(c, 0.5).toFixed(0).padStart(8)} ${pct(c, 0.99).toFixed(0).padStart(8)} ${c[c.length - 1]!.toFixed(0).padStart(8)}` +
        ` ${pct(w, 0.5).toFixed(0).padStart(8)} ${pct(w, 0.99).toFixed(0).padStart(8)} ${w[w.length - 1]!.toFixed(0).padStart(8)}` +
        `  ${g.recognizer.stats.states}`,
    );
  }
  console.log('schema         tokens  compile   cold p50 cold p99 cold max warm p50 warm p99 warm max  DFA states');
  console.log('                       (ms)      (us)     (us)     (us)     (us)     (us)     (us)');
  for (const r of rows) console.log(r);
  const c = all.cold.sort((a, b) => a - b);
  const w = all.warm.sort((a, b) => a - b);
  console.log(
    `\nall ${c.length} tokens: cold p50 ${pct(c, 0.5).toFixed(0)} us, p99 ${pct(c, 0.99).toFixed(0)} us, max ${c[c.length - 1]!.toFixed(0)} us;` +
      ` warm p50 ${pct(w, 0.5).toFixed(0)} us, p99 ${pct(w, 0.99).toFixed(0)} us, max ${w[w.length - 1]!.toFixed(0)} us`,
  );
  const cc = cpu.cold.sort((a, b) => a - b);
  const cw = cpu.warm.sort((a, b) => a - b);
  console.log(
    `CPU time per token: cold p50 ${pct(cc, 0.5)} us, p99 ${pct(cc, 0.99)} us, max ${cc[cc.length - 1]} us;` +
      ` warm p50 ${pct(cw, 0.5)} us, p99 ${pct(cw, 0.99)} us, max ${cw[cw.length - 1]} us`,
  );
  console.log(`(${os.cpus()[0]?.model ?? 'cpu'}, ${os.cpus().length} cores, load average ${os.loadavg()[0]!.toFixed(1)})`);
}

main();
