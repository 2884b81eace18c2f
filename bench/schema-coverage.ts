/**
 * JSON Schema coverage on a corpus of real-world schemas (e.g. JSONSchemaBench's `data/`
 * folders, one schema per .json file): how many compile to a grammar, how many are refused
 * and for which keyword, how long compiling takes. The corpus is not part of this project:
 * point the command at a checkout of it.
 *
 *   npm run build:ts && node dist/bench/schema-coverage.js DIR [DIR ...] [--json] [--vocab ggml-vocab-gpt-2.gguf]
 *
 * Each folder is reported on its own line, then the total; refusals are grouped by the
 * error's first words (the keyword named), errors other than a refusal are listed (they are
 * bugs to look at).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compileGrammar } from '../src/grammar/index.js';
import { loadTokenizer } from '../src/tokenizer/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = [path.resolve(here, '..'), path.resolve(here, '../..')].find((d) => fs.existsSync(path.join(d, 'package.json')))!;
const args = process.argv.slice(2);
const json = args.includes('--json');
const vi = args.indexOf('--vocab');
const vocabFile = vi >= 0 ? args[vi + 1]! : path.resolve(root, '../shared/vocab/ggml-vocab-gpt-2.gguf');
const dirs = args.filter((a, i) => !a.startsWith('--') && args[i - 1] !== '--vocab');
if (dirs.length === 0) {
  console.error('usage: node dist/bench/schema-coverage.js DIR [DIR ...] [--json] [--vocab FILE.gguf]');
  process.exit(2);
}

interface Tally {
  folder: string;
  schemas: number;
  compiled: number;
  refused: number;
  badJson: number;
  errors: number;
  compileMs: number[];
}

const tok = loadTokenizer(vocabFile);
const reasons = new Map<string, number>();
const otherErrors: string[] = [];
const tallies: Tally[] = [];
for (const dir of dirs) {
  const t: Tally = { folder: path.basename(dir), schemas: 0, compiled: 0, refused: 0, badJson: 0, errors: 0, compileMs: [] };
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
    t.schemas++;
    let schema: unknown;
    try {
      schema = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    } catch {
      t.badJson++;
      continue;
    }
    const t0 = performance.now();
    try {
      compileGrammar(tok, { jsonSchema: schema as object });
      t.compileMs.push(performance.now() - t0);
      t.compiled++;
    } catch (e) {
      const err = e as { code?: string; message?: string };
      if (err.code === 'ERR_SCHEMA_UNSUPPORTED' || err.code === 'ERR_SCHEMA_INVALID' || err.code === 'ERR_SCHEMA_TOO_LARGE' || err.code === 'ERR_GRAMMAR_TOO_LARGE') {
        t.refused++;
        // "JSON schema at /path: unsupported keyword "x"": grouped by what follows the location.
        const what = String(err.message).replace(/^JSON schema at [^:]*: /, '').replace(/\(.*$/, '').slice(0, 90);
        const key = `${err.code}: ${what}`;
        reasons.set(key, (reasons.get(key) ?? 0) + 1);
      } else {
        t.errors++;
        if (otherErrors.length < 20) otherErrors.push(`${t.folder}/${f}: ${err.code ?? ''} ${String(err.message).slice(0, 160)}`);
      }
    }
  }
  tallies.push(t);
}

const pct = (a: number, b: number) => (b ? `${((100 * a) / b).toFixed(1)}%` : '-');
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : NaN;
};
const total: Tally = tallies.reduce(
  (a, t) => ({ ...a, schemas: a.schemas + t.schemas, compiled: a.compiled + t.compiled, refused: a.refused + t.refused, badJson: a.badJson + t.badJson, errors: a.errors + t.errors, compileMs: a.compileMs.concat(t.compileMs) }),
  { folder: 'total', schemas: 0, compiled: 0, refused: 0, badJson: 0, errors: 0, compileMs: [] as number[] },
);
if (json) {
  const strip = (t: Tally) => ({ ...t, compileMs: { p50: quantile(t.compileMs, 0.5), p99: quantile(t.compileMs, 0.99) } });
  console.log(JSON.stringify({ folders: tallies.map(strip), total: strip(total), refusals: Object.fromEntries(reasons), errors: otherErrors }, null, 2));
} else {
  console.log('folder               schemas  compiled  refused  other errors  compile p50 / p99');
  for (const t of [...tallies, total])
    console.log(
      `${t.folder.padEnd(20)} ${String(t.schemas).padStart(7)}  ${pct(t.compiled, t.schemas).padStart(8)}  ${pct(t.refused, t.schemas).padStart(7)}  ${String(t.errors).padStart(12)}  ${quantile(t.compileMs, 0.5).toFixed(1)} / ${quantile(t.compileMs, 0.99).toFixed(1)} ms`,
    );
  console.log('\nrefusals, most common first:');
  for (const [k, n] of [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`${String(n).padStart(6)}  ${k}`);
  if (otherErrors.length) console.log('\nother errors (first 20):\n' + otherErrors.join('\n'));
}
