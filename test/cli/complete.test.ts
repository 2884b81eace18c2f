/**
 * `sparrow complete` through the real bin script (needs `npm run build:ts`) on the real
 * stories260K model: greedy output equals llama.cpp's reference continuation.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const models = path.resolve(root, '../shared/models');
const bin = path.join(root, 'bin/sparrow.mjs');
const sparrow = (args: string[], input?: string) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', input, timeout: 60_000 });

interface Ref {
  prompt: string;
  maxTokens: number;
  outPiecesText: string;
}
const refs = JSON.parse(fs.readFileSync(path.join(models, 'reference_outputs.json'), 'utf8')).models as Record<string, Ref[]>;

describe('sparrow complete', () => {
  // q8_0 matches llama.cpp token for token only with flash attention (see test/parity/stories.test.ts).
  const cases = Object.entries(refs).filter(([file]) => !file.includes('q8_0')).flatMap(([file, list]) =>
    list.filter((r) => r.prompt !== '').map((r) => [file, r.prompt, r] as const),
  );
  it.each(cases)('%s "%s": greedy output equals the reference', (file, _p, ref) => {
    const r = sparrow(['complete', path.join(models, file), ref.prompt, '--max-tokens', String(ref.maxTokens), '--threads', '1']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(ref.outPiecesText);
    expect(r.stderr).toBe(''); // not a terminal: no progress bar
  });

  it('reads the prompt from stdin with -, and --stats reports on stderr', () => {
    const ref = refs['stories260K-f32.gguf']![0]!;
    const r = sparrow(['complete', path.join(models, 'stories260K-f32.gguf'), '-', '--max-tokens=32', '--stats'], ref.prompt);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe(ref.outPiecesText);
    expect(r.stderr).toMatch(/^\[maxTokens\] prompt 5 tokens, generated 32 tokens, [\d.]+ tokens\/s\n$/);
  });

  it('sampling flags reach the sampler: a seed repeats, --stop cuts, --max-tokens counts', () => {
    const m = path.join(models, 'stories260K-f32.gguf');
    const s = ['complete', m, 'Once upon a time', '--temperature', '1', '--top-k', '20', '--top-p', '0.9', '--min-p', '0.05', '--repeat-penalty', '1.1', '--max-tokens', '48', '--ctx', '256'];
    const a = sparrow([...s, '--seed', '7']);
    const b = sparrow([...s, '--seed', '7']);
    const c = sparrow([...s, '--seed', '8']);
    expect(a.status, a.stderr).toBe(0);
    expect(a.stdout.length).toBeGreaterThan(20);
    expect(b.stdout).toBe(a.stdout);
    expect(c.stdout).not.toBe(a.stdout);
    const stopped = sparrow(['complete', m, 'Once upon a time', '--max-tokens', '32', '--stop', 'Lily', '--stop', 'xyz']);
    expect(stopped.stdout).toBe(', there was a little girl named ');
    const ignoring = sparrow(['complete', m, 'Once upon a time', '--max-tokens', '300', '--ignore-eos', '--stats', '--ctx', '128']);
    expect(ignoring.status, ignoring.stderr).toBe(0);
    expect(ignoring.stderr).toMatch(/^\[maxTokens\] .* generated 300 tokens/);
  });

  it('bad flags: one line, exit 2, before the model loads', () => {
    const m = path.join(models, 'stories260K-f32.gguf');
    for (const args of [
      ['--temperature', '-1'],
      ['--top-p', '0'],
      ['--top-p', '1.5'],
      ['--min-p', 'x'],
      ['--top-k', '2.5'],
      ['--seed', '-3'],
      ['--max-tokens', '0'],
      ['--threads', '0'],
      ['--ctx', '1000000000'],
      ['--repeat-penalty', '0'],
      ['--stop', ''],
      ['--frobnicate'],
      ['--max-tokens'],
    ]) {
      const r = sparrow(['complete', m, 'Once', ...args]);
      expect(r.status, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.stderr).toMatch(/^sparrow complete: /);
    }
    const noPrompt = sparrow(['complete', m]);
    expect(noPrompt.status).toBe(2);
  });

  it('a missing or bad model file: one line, exit 1', () => {
    const missing = sparrow(['complete', path.join(root, 'no-such-model.gguf'), 'x']);
    expect(missing.status).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('no such file');
    const bad = sparrow(['complete', bin, 'x']); // a JavaScript file, not a GGUF
    expect(bad.status).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain('ERR_GGUF');
    const dir = sparrow(['complete', models, 'x']);
    expect(dir.status).toBe(1);
  });

  it('--help and --version for every command', () => {
    const version = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
    for (const cmd of ['complete', 'chat', 'pull', 'inspect', 'info']) {
      const h = sparrow([cmd, '--help']);
      expect(h.status, cmd).toBe(0);
      expect(h.stdout).toMatch(new RegExp(`^usage: sparrow ${cmd}`));
      expect(h.stdout).toContain('--version');
      const v = sparrow([cmd, '--version']);
      expect(v.status).toBe(0);
      expect(v.stdout.trim()).toBe(version);
    }
    expect(sparrow(['--version']).stdout.trim()).toBe(version);
    const top = sparrow(['--help']);
    for (const cmd of ['complete', 'chat', 'pull', 'inspect', 'info']) expect(top.stdout).toContain(`  ${cmd} `);
  });

  const hasScript = spawnSync('sh', ['-c', 'command -v script']).status === 0;
  if (!hasScript) console.warn('complete: the terminal progress-bar test skipped, `script` (util-linux) not found');
  it.skipIf(!hasScript)('on a terminal (a pty from `script`), a progress bar shows the load and is cleared before the text', () => {
    const m = path.join(models, 'stories260K-f32.gguf');
    const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
    const cmd = [process.execPath, bin, 'complete', m, 'Once upon a time', '--max-tokens', '32'].map(q).join(' ');
    const r = spawnSync('script', ['-q', '-e', '-c', cmd, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const out = r.stdout.replace(/\r\n/g, '\n');
    expect(out).toMatch(/loading model \[#*\.*\] +\d+%/);
    expect(out).toMatch(/loading model \[#+\] 100%\r\x1b\[K, there was a little girl/);
    // What is left on the screen: the text alone, then the newline a terminal gets.
    expect(out.slice(out.lastIndexOf('\x1b[K') + 3)).toBe(refs['stories260K-f32.gguf']![0]!.outPiecesText + '\n');
  });

  it('a reader that closes the pipe early (| head) ends the generation quietly, exit 0', async () => {
    const m = path.join(models, 'stories260K-f32.gguf');
    const child = spawn(process.execPath, [bin, 'complete', m, 'Once upon a time', '--ignore-eos', '--ctx', '64', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code, err).toBe(0);
    expect(err).toBe('');
  });

  it('SIGINT stops a generation: the text so far is written, exit 130', async () => {
    const m = path.join(models, 'stories260K-f32.gguf');
    const child = spawn(process.execPath, [bin, 'complete', m, 'Once upon a time', '--ignore-eos', '--ctx', '64', '--threads', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(code).toBe(130);
    const greedy = refs['stories260K-f32.gguf']![0]!.outPiecesText;
    expect(out.length).toBeGreaterThan(0);
    expect(out.startsWith(greedy) || greedy.startsWith(out), out).toBe(true);
  });
});
