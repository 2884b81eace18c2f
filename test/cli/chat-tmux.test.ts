/**
 * `sparrow chat` driven the way a person uses it: in a real terminal (tmux), typing with
 * send-keys and reading the screen with capture-pane. Needs tmux (apt-get install tmux);
 * skipped, with the reason printed, without it. Its own tmux server (-L) so nothing else
 * running tmux is touched.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '../..');
const model = path.resolve(root, '../shared/models/stories260K-f32.gguf');
const bin = path.join(root, 'bin/sparrow.mjs');
const hasTmux = spawnSync('sh', ['-c', 'command -v tmux']).status === 0;
if (!hasTmux) console.warn('chat-tmux: skipped, tmux not found (apt-get install tmux)');

const socket = `sparrow-chat-test-${process.pid}`;
const tmux = (...args: string[]) => spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
const screen = (s: string) => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', s).stdout;

async function waitFor(s: string, test: (text: string) => boolean, what: string, ms = 20_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    const text = screen(s);
    if (test(text)) return text;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the screen:\n${text}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts the chat in a new tmux session; the shell prints EXIT=<code> when sparrow ends. */
function start(name: string, args: string[]): string {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const cmd = [process.execPath, bin, 'chat', model, ...args].map(q).join(' ');
  const r = tmux('new-session', '-d', '-s', name, '-x', '120', '-y', '40', `${cmd}; echo EXIT=$?; sleep 60`);
  expect(r.status, r.stderr).toBe(0);
  return name;
}

/** Lines that are prompts: "> " at the start. */
const prompts = (text: string) => text.split('\n').filter((l) => /^> ?/.test(l)).length;

afterAll(() => {
  if (hasTmux) tmux('kill-server');
});

describe.skipIf(!hasTmux)('sparrow chat in a terminal (tmux)', () => {
  it('answers, keeps the conversation, Ctrl-C twice at the prompt exits with 0', async () => {
    const s = start('turns', ['--max-tokens', '12', '--system', 'You tell stories.', '--threads', '1']);
    await waitFor(s, (t) => /^> ?$/m.test(t), 'the first prompt');
    tmux('send-keys', '-t', s, '-l', 'Tell me about a cat.');
    tmux('send-keys', '-t', s, 'Enter');
    let t = await waitFor(s, (x) => prompts(x) >= 2, 'the answer and the next prompt');
    const lines = t.split('\n');
    const at = lines.findIndex((l) => l.startsWith('> Tell me about a cat.'));
    expect(at).toBeGreaterThanOrEqual(0);
    const answer1 = lines[at + 1]!;
    expect(answer1.trim().length).toBeGreaterThan(0);
    tmux('send-keys', '-t', s, '-l', 'And then?');
    tmux('send-keys', '-t', s, 'Enter');
    t = await waitFor(s, (x) => prompts(x) >= 3, 'the second answer');
    expect(t).toContain('> And then?');
    tmux('send-keys', '-t', s, 'C-c');
    t = await waitFor(s, (x) => x.includes('Ctrl-C again to quit'), 'the exit hint');
    expect(t).not.toContain('EXIT=');
    tmux('send-keys', '-t', s, 'C-c');
    t = await waitFor(s, (x) => /EXIT=\d+/.test(x), 'the exit');
    expect(t).toContain('EXIT=0');
  });

  it('Ctrl-C stops an answer mid-stream and the chat goes on', async () => {
    // --ignore-eos: the answer would go on for ever (the small context shifts), so only Ctrl-C ends it.
    const s = start('interrupt', ['--ignore-eos', '--ctx', '128', '--threads', '1']);
    await waitFor(s, (t) => /^> ?$/m.test(t), 'the first prompt');
    tmux('send-keys', '-t', s, '-l', 'Tell me a long story.');
    tmux('send-keys', '-t', s, 'Enter');
    // Wait until the answer is streaming (some text after the question), then interrupt it.
    const streaming = (x: string) => {
      const after = x.split('> Tell me a long story.')[1] ?? '';
      return after.replace(/\s/g, '').length > 40;
    };
    await waitFor(s, streaming, 'the answer to start streaming');
    tmux('send-keys', '-t', s, 'C-c');
    let t = await waitFor(s, (x) => x.includes('[stopped]') && /\[stopped\]\n> ?/.test(x), 'the stopped answer and a prompt');
    expect(t).not.toContain('EXIT=');
    expect(t).not.toContain('Ctrl-C again to quit'); // that Ctrl-C was for the answer only
    // The chat is still alive and answers the next message (stopped the same way).
    tmux('send-keys', '-t', s, '-l', 'Again.');
    tmux('send-keys', '-t', s, 'Enter');
    await waitFor(s, (x) => (x.split('> Again.')[1] ?? '').replace(/\s/g, '').length > 40, 'the second answer to stream');
    tmux('send-keys', '-t', s, 'C-c');
    t = await waitFor(s, (x) => (x.match(/\[stopped\]\n> ?/g) ?? []).length === 2, 'the second stopped answer');
    expect(t).not.toContain('EXIT=');
    tmux('send-keys', '-t', s, '-l', '/exit');
    tmux('send-keys', '-t', s, 'Enter');
    t = await waitFor(s, (x) => /EXIT=\d+/.test(x), 'the exit');
    expect(t).toContain('EXIT=0');
  });

  it('a piped conversation (stdin not a terminal): one answer per line, no prompts', () => {
    const r = spawnSync(process.execPath, [bin, 'chat', model, '--max-tokens', '8', '--threads', '1'], {
      input: 'Hello\nTell me about a dog.\n',
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l.trim());
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(r.stdout).not.toContain('> ');
  });

  it('a missing model or a bad flag: one line, exit 1 or 2', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-chat-'));
    const missing = spawnSync(process.execPath, [bin, 'chat', path.join(dir, 'none.gguf')], { encoding: 'utf8' });
    expect(missing.status).toBe(1);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    const bad = spawnSync(process.execPath, [bin, 'chat', model, '--temperature', 'hot'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    fs.rmSync(dir, { recursive: true });
  });
});
