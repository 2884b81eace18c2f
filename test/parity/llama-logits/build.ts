/**
 * Builds and runs llama-logits (llama-logits.cpp beside this file): llama.cpp's logits
 * for every position, from the shared libraries node-llama-cpp ships, with a chosen CPU
 * build of ggml. The headers come from the llama.cpp source bundled with node-llama-cpp
 * (the same release as its binaries); the tool is compiled once into .cache/.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

export interface LlamaLogitsTool {
  /** The compiled tool. */
  exe: string;
  /** node-llama-cpp's prebuilt library folder: one libggml-cpu-<build>.so per CPU build. */
  binsDir: string;
  /** The CPU builds present, by name (`x64`, `sse42`, `haswell`, `zen4`, ...). */
  cpuBuilds: string[];
}

/** The root folder of an installed package (its exports may hide package.json). */
function packageRoot(name: string): string {
  let dir = path.dirname(require.resolve(name));
  while (!existsSync(path.join(dir, 'package.json')) || JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).name !== name) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`cannot find the package root of ${name}`);
    dir = up;
  }
  return dir;
}

/** Where node-llama-cpp's prebuilt CPU binaries for this platform live, or undefined. */
function prebuiltBins(): string | undefined {
  const name = `${process.platform}-${process.arch}`;
  try {
    const dir = path.join(packageRoot(`@node-llama-cpp/${name}`), 'bins', name);
    return existsSync(dir) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/** Why the tool cannot be built here (not Linux, no prebuilt binaries), or undefined. */
export function unavailableReason(): string | undefined {
  if (process.platform !== 'linux') return 'llama-logits links node-llama-cpp shared libraries: Linux only';
  if (!prebuiltBins()) return `node-llama-cpp has no prebuilt binaries for ${process.platform}-${process.arch}`;
  return undefined;
}

/** Compiles llama-logits (once per node-llama-cpp release and tool source). */
export function buildLlamaLogits(cacheRoot = path.resolve('.cache', 'llama-logits')): LlamaLogitsTool {
  const binsDir = prebuiltBins();
  if (!binsDir) throw new Error(unavailableReason());
  const files = readdirSync(binsDir);
  const lib = (re: RegExp): string => {
    const found = files.find((f) => re.test(f));
    if (!found) throw new Error(`no library matching ${re} in ${binsDir}`);
    return found;
  };
  const libs = [lib(/^libllama(\.v[\d.]+)?\.so$/), lib(/^libggml(\.v[\d.]+)?\.so$/), lib(/^libggml-base(\.v[\d.]+)?\.so$/)];
  const cpuBuilds = files.flatMap((f) => /^libggml-cpu-(.+)\.so$/.exec(f)?.[1] ?? []);

  const source = path.join(here, 'llama-logits.cpp');
  const nlcDir = packageRoot('node-llama-cpp');
  const version = JSON.parse(readFileSync(path.join(nlcDir, 'package.json'), 'utf8')).version as string;
  const tag = createHash('sha256').update(version).update(readFileSync(source)).update(binsDir).digest('hex').slice(0, 12);
  const dir = path.join(cacheRoot, tag);
  const exe = path.join(dir, 'llama-logits');
  if (existsSync(exe)) return { exe, binsDir, cpuBuilds };

  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  // Headers from the llama.cpp release node-llama-cpp was built from (its git bundle).
  const bundle = path.join(nlcDir, 'llama', 'gitRelease.bundle');
  if (!existsSync(bundle)) throw new Error(`node-llama-cpp ships no llama.cpp source bundle (${bundle})`);
  const git = path.join(dir, 'llama.cpp.git');
  execFileSync('git', ['clone', '--quiet', '--bare', bundle, git], { stdio: 'pipe' });
  const tar = execFileSync('git', ['--git-dir', git, 'archive', 'HEAD', 'include', 'ggml/include'], {
    maxBuffer: 64 << 20,
  });
  const tarFile = path.join(dir, 'headers.tar');
  writeFileSync(tarFile, tar);
  execFileSync('tar', ['-xf', tarFile, '-C', dir]);
  rmSync(git, { recursive: true, force: true });
  rmSync(tarFile);

  execFileSync(
    process.env.CXX ?? 'c++',
    [
      '-O2', '-std=c++17', source,
      '-I', path.join(dir, 'include'), '-I', path.join(dir, 'ggml', 'include'),
      '-L', binsDir, ...libs.map((l) => `-l:${l}`), `-Wl,-rpath,${binsDir}`,
      '-o', exe,
    ],
    { stdio: 'pipe' },
  );
  return { exe, binsDir, cpuBuilds };
}

/**
 * llama.cpp's logits for each sequence (all positions, [position][vocab] per sequence),
 * with `cpuBuild` (a name from `cpuBuilds`) or, by default, the build node-llama-cpp
 * would pick on this machine. Returns the logits and the library that ran them.
 */
export function llamaLogits(
  tool: LlamaLogitsTool,
  model: string,
  sequences: number[][],
  vocab: number,
  workDir: string,
  cpuBuild?: string,
): { logits: Float32Array[]; library: string } {
  mkdirSync(workDir, { recursive: true });
  const id = createHash('sha256').update(`${model} ${cpuBuild ?? 'best'}`).digest('hex').slice(0, 12);
  const tokensFile = path.join(workDir, `${id}.tokens`);
  const outFile = path.join(workDir, `${id}.logits`);
  writeFileSync(tokensFile, sequences.map((s) => s.join(' ')).join('\n') + '\n');
  const backend = cpuBuild ? path.join(tool.binsDir, `libggml-cpu-${cpuBuild}.so`) : tool.binsDir;
  const library = execFileSync(tool.exe, [backend, model, tokensFile, outFile], { encoding: 'utf8' }).trim();
  const raw = readFileSync(outFile);
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const logits: Float32Array[] = [];
  let at = 0;
  for (const s of sequences) {
    logits.push(all.slice(at, at + s.length * vocab));
    at += s.length * vocab;
  }
  if (at !== all.length) throw new Error(`llama-logits wrote ${all.length} floats, expected ${at}`);
  rmSync(tokensFile);
  rmSync(outFile);
  return { logits, library: path.basename(library) };
}
