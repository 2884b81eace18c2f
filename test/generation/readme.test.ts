// The README's generation examples run as written: each `readme-example` block is taken
// from README.md and run with 'model.gguf' pointing at the stories260K test model and
// `import ... from 'sparrow-llm'` bound to this package's sources.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as sparrow from '../../src/index.js';

const readme = readFileSync(path.resolve('README.md'), 'utf8');
const MODEL = path.resolve('../shared/models/stories260K-f32.gguf');

function example(name: string): string {
  const m = new RegExp(`<!-- readme-example: ${name} -->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(readme);
  if (!m) throw new Error(`README.md has no readme-example "${name}"`);
  return m[1];
}

async function run(code: string): Promise<unknown[][]> {
  const logged: unknown[][] = [];
  const body = code
    .replace(/import \{([^}]*)\} from 'sparrow-llm';/g, 'const {$1} = sparrow;')
    .replaceAll("'model.gguf'", JSON.stringify(MODEL));
  expect(body).not.toMatch(/\bimport\b/);
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<void>;
  const console = { log: (...args: unknown[]) => logged.push(args) };
  await new AsyncFunction('sparrow', 'console', body)(sparrow, console);
  return logged;
}

describe('README examples', () => {
  it('streaming', async () => {
    const out = await run(example('streaming'));
    expect(String(out[0][0])).toMatch(/\[(maxTokens|stop|eos)\] \d+ tokens in \d+ ms/);
  });
  it('chat', async () => {
    const out = await run(example('chat'));
    expect(out.at(-1)![0]).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);
  });
  it('abort', async () => {
    const out = await run(example('abort'));
    expect(['abort', 'eos']).toContain(out[0][0]);
  });
});
