/**
 * Loads the native addon once. Order: $SPARROW_ADDON (an explicit .node path, used by
 * the sanitizer and cmake builds), then node-gyp-build (prebuilds/, then build/Release).
 * Each module of src/ declares the part of the addon it uses as its own interface and
 * reads it through `addon<T>()`; this file knows nothing about them.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GGUFError, SparrowError } from './errors.js';

const require = createRequire(import.meta.url);

/** The package root (this file is src/native.ts, compiled to dist/src/native.js). */
export const packageRoot = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    try {
      const pkg = require(path.join(dir, 'package.json')) as { name?: string };
      if (pkg.name === 'sparrow-llm') return dir;
    } catch {
      /* keep going up */
    }
    dir = path.dirname(dir);
  }
  throw new SparrowError('cannot find the sparrow-llm package root', 'ERR_INTERNAL');
})();

interface CoreAddon {
  setErrorClasses(classes: { GGUFError: typeof GGUFError; SparrowError: typeof SparrowError }): void;
}

let loaded: unknown;

export function addon<T>(): T & CoreAddon {
  if (!loaded) {
    const explicit = process.env.SPARROW_ADDON;
    let mod: CoreAddon;
    try {
      if (explicit) {
        mod = require(path.resolve(explicit)) as CoreAddon;
      } else {
        const load = require('node-gyp-build') as (dir: string) => unknown;
        mod = load(packageRoot) as CoreAddon;
      }
    } catch (err) {
      throw new SparrowError(
        `cannot load the sparrow-llm native addon${explicit ? ` from SPARROW_ADDON=${explicit}` : ''}: ` +
          `${(err as Error).message}. Run \`npm install\` (or \`npm run build:native\`) to build it.`,
        'ERR_ADDON_LOAD',
        { cause: err },
      );
    }
    mod.setErrorClasses({ GGUFError, SparrowError });
    loaded = mod;
  }
  return loaded as T & CoreAddon;
}

/**
 * The addon's internal object: test and benchmark hooks (reference kernels, one kernel
 * on a chosen SIMD path, micro-benchmarks). Not part of the API; only tests and the
 * bench use it.
 */
export function internal<T>(): T {
  return addon<{ internal: T }>().internal;
}
