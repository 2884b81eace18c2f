// The README's structured-output example runs as written (with 'model.gguf' pointing at
// the stories260K test model and 'sparrow-llm' bound to this package's sources).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import * as sparrow from '../../src/index.js';

it('README structured-output example', async () => {
  const readme = readFileSync(path.resolve('README.md'), 'utf8');
  const m = /<!-- readme-example: structured -->\s*```js\n([\s\S]*?)```/.exec(readme);
  expect(m).not.toBeNull();
  const body = m![1]!
    .replace(/import \{([^}]*)\} from 'sparrow-llm';/g, 'const {$1} = sparrow;')
    .replaceAll("'model.gguf'", JSON.stringify(path.resolve('../shared/models/stories260K-f32.gguf')));
  const logged: unknown[][] = [];
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor as new (...args: string[]) => (...a: unknown[]) => Promise<void>;
  await new AsyncFunction('sparrow', 'console', body)(sparrow, { log: (...a: unknown[]) => logged.push(a) });
  const value = logged[0]![0] as { name: unknown; age: unknown };
  expect(typeof value.name).toBe('string');
  expect((value.name as string).length).toBeLessThanOrEqual(20);
  expect(Number.isInteger(value.age) && (value.age as number) >= 0 && (value.age as number) <= 120).toBe(true);
  expect(logged[1]![0]).toMatch(/^The answer is (yes|no)\.$/);
}, 60_000);
