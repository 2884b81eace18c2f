/**
 * Loads the native addon once. Order: $SPARROW_ADDON (an explicit .node path, used by
 * the sanitizer and cmake builds); then the Vulkan build (`npm run build:vulkan`:
 * build-vulkan/Release/sparrow.node, the whole addon plus the Vulkan backend) when it
 * exists and is at least as new as the binary node-gyp-build would pick (so a later
 * `npm run build:native` is not shadowed by a stale Vulkan build); else node-gyp-build
 * (prebuilds/, then build/Release). The Vulkan build opens libvulkan at run time, so it
 * loads where no Vulkan exists and runs on the CPU there.
 * Each module of src/ declares the part of the addon it uses as its own interface and
 * reads it through `addon<T>()`; this file knows nothing about them.
 */
import fs from 'node:fs';
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

/** The Vulkan build's path when it should be loaded (see the file's comment), else undefined. */
function vulkanBuild(load: { resolve(dir: string): string }): string | undefined {
  const file = path.join(packageRoot, 'build-vulkan', 'Release', 'sparrow.node');
  let mtime: number;
  try {
    mtime = fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
  try {
    return fs.statSync(load.resolve(packageRoot)).mtimeMs <= mtime ? file : undefined;
  } catch {
    return file;  // no other binary
  }
}

export function addon<T>(): T & CoreAddon {
  if (!loaded) {
    const explicit = process.env.SPARROW_ADDON;
    let mod: CoreAddon;
    try {
      if (explicit) {
        mod = require(path.resolve(explicit)) as CoreAddon;
      } else {
        const load = require('node-gyp-build') as ((dir: string) => unknown) & { resolve(dir: string): string };
        const vulkan = vulkanBuild(load);
        mod = (vulkan ? require(vulkan) : load(packageRoot)) as CoreAddon;
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
