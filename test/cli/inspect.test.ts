/** `sparrow inspect` / `sparrow info` through the real bin script (needs `npm run build:ts`). */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inspectGGUF } from '../../src/index.js';

const root = path.resolve(__dirname, '../..');
const shared = path.resolve(root, '../shared');
const bin = path.join(root, 'bin/sparrow.mjs');
const sparrow = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: process.env });
const files = [
  ...fs.readdirSync(path.join(shared, 'models')).filter((f) => f.endsWith('.gguf')).map((f) => path.join(shared, 'models', f)),
  ...fs.readdirSync(path.join(shared, 'vocab')).filter((f) => f.endsWith('.gguf')).map((f) => path.join(shared, 'vocab', f)),
];

describe('sparrow CLI', () => {
  it('the compiled CLI exists (npm install / npm run build:ts)', () => {
    expect(fs.existsSync(path.join(root, 'dist/src/cli/main.js'))).toBe(true);
  });

  it.each(files.map((f) => [path.basename(f), f]))('inspect %s', (_name, file) => {
    const r = sparrow('inspect', file);
    expect(r.status, r.stderr).toBe(0);
    const g = inspectGGUF(file);
    const arch = String(g.metadata['general.architecture']);
    expect(r.stdout).toContain(`architecture    ${arch}`);
    expect(r.stdout).toContain(`GGUF v${g.version}, ${g.tensors.length} tensors`);
    const tokens = g.metadata['tokenizer.ggml.tokens'] as unknown[];
    expect(r.stdout).toContain(`${tokens.length} tokens`);
  });

  it('inspect --tensors lists every tensor; --json round-trips the header', () => {
    const file = path.join(shared, 'models/stories260K-q8_0.gguf');
    const g = inspectGGUF(file);
    const t = sparrow('inspect', file, '--tensors');
    expect(t.status).toBe(0);
    for (const x of g.tensors) expect(t.stdout).toMatch(new RegExp(`^${x.name.replace(/\./g, '\\.')}\\s+${x.type}\\s`, 'm'));
    const j = sparrow('inspect', file, '--json');
    expect(j.status).toBe(0);
    const parsed = JSON.parse(j.stdout);
    expect(parsed.tensors).toEqual(g.tensors);
    expect(parsed.metadata['llama.block_count']).toBe(g.metadata['llama.block_count']);
    // the stories260K model: 5 layers, 64-dim (see ../shared/models/PROVENANCE.md)
    expect(parsed.metadata['llama.block_count']).toBe(5);
    expect(parsed.metadata['llama.embedding_length']).toBe(64);
  });

  it('missing or bad files: one line, exit 1; a bad command line: one line, exit 2', () => {
    for (const [code, args] of [
      [1, ['inspect', '/nonexistent/x.gguf']],
      [1, ['inspect', bin]],
      [2, ['inspect']],
      [2, ['inspect', 'a', '--bogus']],
      [2, ['info', '--bogus']],
      [2, ['nope']],
    ] as const) {
      const r = sparrow(...args);
      expect(r.status, args.join(' ')).toBe(code);
      expect(r.signal).toBeNull();
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
    }
    const missing = sparrow('inspect', path.join(root, 'does-not-exist.gguf'));
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('ERR_GGUF_IO');
  });

  it('info names the kernel path', () => {
    const r = sparrow('info', '--json');
    expect(r.status).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.supportedIsas).toContain(info.isa);
  });
});
