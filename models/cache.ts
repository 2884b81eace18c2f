/**
 * The synthetic model cache: `syntheticModel(name, mix)` returns the path of a GGUF file
 * of a catalogue shape, writing it on first use.
 *
 * Where: `$SPARROW_CACHE/models/`, or else `<OS cache dir>/sparrow-llm/models/`
 * (`$XDG_CACHE_HOME` or `~/.cache` on Linux, `~/Library/Caches` on macOS,
 * `%LOCALAPPDATA%` on Windows).
 *
 * File names carry the model name, mix, seed, writer version and a hash of everything that
 * determines the bytes (shape and options), so a changed shape or writer never reuses a
 * stale file. Files are written under a unique temporary name and renamed into place, so
 * concurrent writers (two test workers) each produce a complete file and the last rename
 * wins with identical content; a crash never leaves a half file under the final name.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SparrowError } from '../src/errors.js';
import { catalogueEntry } from './catalogue.js';
import { isMixName, MIXES, resolveShape, writeSyntheticModel, type FallbackPolicy, type MixName, type ModelShape } from './synthetic.js';

/**
 * Bump whenever the bytes written for the same inputs change (weight generation, metadata,
 * tokenizer, tensor order, type rules): cached files of older versions are then ignored.
 */
export const WRITER_VERSION = 1;

/** The folder synthetic models are cached in (created on demand). */
export function modelCacheDir(): string {
  const explicit = process.env.SPARROW_CACHE;
  if (explicit) return path.join(path.resolve(explicit), 'models');
  let base: string;
  if (process.platform === 'win32') base = process.env.LOCALAPPDATA || path.join(os.homedir(), 'AppData', 'Local');
  else if (process.platform === 'darwin') base = path.join(os.homedir(), 'Library', 'Caches');
  else base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'sparrow-llm', 'models');
}

export interface SyntheticModelRequest {
  /** PRNG seed; default 1. */
  seed?: number;
  /** llama-quantize --pure: every 2-D weight in the mix's base type. */
  pure?: boolean;
  /** Fallback for rows a 256-block type cannot take; default 'llama.cpp' (what users' files have). */
  fallback?: FallbackPolicy;
  /** Progress while writing (bytes written, total bytes). Called once with (size, size) on a cache hit. */
  onProgress?: (written: number, total: number) => void;
  /** Cache folder; default `modelCacheDir()`. */
  dir?: string;
}

/** A catalogue name, or a custom shape with a name for the file. */
export type ModelRef = string | { name: string; shape: ModelShape };

/** The cache file name for a model (no I/O). */
export function syntheticModelFileName(model: ModelRef, mix: MixName, request: SyntheticModelRequest = {}): string {
  const { name, shape } = typeof model === 'string' ? catalogueEntry(model) : model;
  if (typeof name !== 'string' || !/^[A-Za-z0-9._-]+$/.test(name))
    throw new SparrowError(`model name must be letters, digits, '.', '_' or '-'; got ${JSON.stringify(name)}`, 'ERR_INVALID_ARG');
  if (!isMixName(mix)) throw new SparrowError(`mix must be one of ${MIXES.join(', ')}; got ${String(mix)}`, 'ERR_INVALID_ARG');
  const seed = request.seed ?? 1;
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw new SparrowError(`seed must be an integer in [0, 2^32), got ${String(seed)}`, 'ERR_INVALID_ARG');
  const resolved = resolveShape(shape);
  const key = JSON.stringify({
    shape: resolved,
    mix,
    seed,
    pure: request.pure ?? false,
    fallback: request.fallback ?? 'llama.cpp',
    v: WRITER_VERSION,
  });
  const hash = createHash('sha256').update(key).digest('hex').slice(0, 10);
  const variant = (request.pure ? '-pure' : '') + (request.fallback === 'supported' ? '-supfb' : '');
  return `${name}-${mix}${variant}-s${seed}-w${WRITER_VERSION}-${hash}.gguf`;
}

/** Writes in progress in this process, by final path: concurrent callers share one write. */
const inFlight = new Map<string, Promise<string>>();

/**
 * The path of a cached synthetic model of catalogue shape `model` (or a custom shape) in
 * `mix`, writing it first when it is not cached yet.
 */
export async function syntheticModel(model: ModelRef, mix: MixName, request: SyntheticModelRequest = {}): Promise<string> {
  const fileName = syntheticModelFileName(model, mix, request);
  const dir = request.dir ?? modelCacheDir();
  const file = path.join(dir, fileName);

  const hit = await fileSize(file);
  if (hit > 0) {
    request.onProgress?.(hit, hit);
    return file;
  }
  const pending = inFlight.get(file);
  if (pending) return pending;

  const write = (async () => {
    await fsp.mkdir(dir, { recursive: true });
    await removeStaleTemps(dir);
    const { name, shape } = typeof model === 'string' ? catalogueEntry(model) : model;
    await writeSyntheticModel(file, {
      shape,
      mix,
      seed: request.seed ?? 1,
      pure: request.pure,
      fallback: request.fallback,
      name: `synthetic ${name}`,
      onProgress: request.onProgress,
    });
    return file;
  })();
  inFlight.set(file, write);
  try {
    return await write;
  } finally {
    inFlight.delete(file);
  }
}

async function fileSize(file: string): Promise<number> {
  try {
    const st = await fsp.stat(file);
    return st.isFile() ? st.size : 0;
  } catch {
    return 0;
  }
}

/**
 * Removes temporary files (`.<name>.<pid>.<random>.tmp`) left by writers that crashed:
 * those untouched for 10 minutes whose process is gone (a live writer keeps its file's
 * mtime fresh; the pid test alone could misfire across containers sharing the folder),
 * and any older than a day.
 */
async function removeStaleTemps(dir: string): Promise<void> {
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return;
  }
  const now = Date.now();
  await Promise.all(
    names
      .filter((n) => n.startsWith('.') && n.endsWith('.tmp'))
      .map(async (n) => {
        const p = path.join(dir, n);
        const pid = Number(/\.(\d+)\.[a-z0-9]+\.tmp$/.exec(n)?.[1]);
        let dead = false;
        if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid) {
          try {
            process.kill(pid, 0);
          } catch (err) {
            dead = (err as NodeJS.ErrnoException).code === 'ESRCH';
          }
        }
        try {
          const age = now - fs.statSync(p).mtimeMs;
          if ((dead && age > 10 * 60_000) || age > 24 * 3600_000) await fsp.rm(p, { force: true });
        } catch {
          /* another process removed or renamed it */
        }
      }),
  );
}
