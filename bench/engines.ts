/**
 * The two engines behind one small interface, so the measuring code (worker.ts) is the
 * same for both. Each engine is imported lazily: node-llama-cpp is optional (a
 * devDependency of sparrow-llm), and sparrow's own model API is reached through its
 * public entry point only.
 *
 * Both engines do the same work: greedy sampling (argmax) after every evaluated token,
 * and the next token fed back is taken from a fixed list, not the sampled one, so both
 * process the very same token ids whatever their (random-weight) outputs are.
 */
import { SparrowError } from '../src/errors.js';
import type { EngineName } from './options.js';

export interface EngineInfo {
  /** e.g. 'sparrow-llm 0.1.0 (avx512)' or 'node-llama-cpp 3.21.1 (llama.cpp b6xxx, cpu)'. */
  version: string;
}

export interface LoadedEngine {
  info: EngineInfo;
  /** Back to an empty context. */
  reset(): Promise<void>;
  /** Evaluates a prompt from the current position; resolves with the greedy next token. */
  prompt(tokens: number[]): Promise<number>;
  /** Evaluates one token; resolves with the greedy next token. */
  step(token: number): Promise<number>;
  close(): Promise<void>;
  /** sparrow with sparsity > 0: the weight bytes its channel-major matrices read so far, and the dense equivalent. */
  sparseBytes?(): { read: number; dense: number } | null;
}

export interface LoadOptions {
  threads: number;
  contextSize: number;
  batchSize: number;
  /** sparrow only: loadModel's activation sparsity level (0 or absent: dense). */
  sparsity?: number;
}

export interface Engine {
  /** Loads the library itself (not timed: load_ms covers the model only). */
  init(): Promise<EngineInfo>;
  /** Loads the model and creates a context ready to evaluate (this is load_ms; init() first). */
  load(path: string, options: LoadOptions): Promise<LoadedEngine>;
}

/** The command that adds the comparison engine to a project. */
export const LLAMA_INSTALL_HINT = 'npm i -D node-llama-cpp@3.21.1';

/** Index of the largest value. */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  let bv = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    const v = xs[i]!;
    if (v > bv) {
      bv = v;
      best = i;
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------
// sparrow-llm: loadModel(path, { threads, batchSize }) -> model.createSession({ contextSize })
// -> session.evaluate(tokens) -> Float32Array (the last position's logits).

type SparrowApi = typeof import('../src/index.js');

/** sparrow-llm's public API (its addon loads on first use). */
export async function sparrowApi(): Promise<SparrowApi> {
  return import('../src/index.js');
}

async function packageVersion(): Promise<string> {
  const { packageRoot } = await import('../src/native.js');
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  return (JSON.parse(await readFile(join(packageRoot, 'package.json'), 'utf8')) as { version: string }).version;
}

let sparrowInfo: EngineInfo | undefined;

/** `--gpu vulkan`: both engines on the GPU (set by the worker before init()); false: the CPU. */
let benchGpu: 'vulkan' | false = false;
export function useGpu(gpu: 'vulkan' | false): void {
  benchGpu = gpu;
}

const sparrow: Engine = {
  async init() {
    const api = await sparrowApi();
    // systemInfo() loads the addon, so load_ms does not include it.
    sparrowInfo ??= { version: `sparrow-llm ${await packageVersion()} (${api.systemInfo().isa})` };
    return sparrowInfo;
  },
  async load(path, o) {
    const api = await sparrowApi();
    const info = await this.init();
    const model = await api.loadModel(path, {
      threads: o.threads,
      batchSize: o.batchSize,
      gpu: benchGpu,
      ...(o.sparsity ? { sparsity: o.sparsity } : {}),
    });
    if (benchGpu && model.info.gpu) info.version = info.version.replace(/\)$/, `, vulkan: ${model.info.gpu.name})`);
    let session: ReturnType<typeof model.createSession>;
    try {
      session = model.createSession({ contextSize: o.contextSize });
    } catch (err) {
      model.dispose();
      throw err;
    }
    return {
      info,
      async reset() {
        session.reset();
      },
      async prompt(tokens) {
        return argmax(await session.evaluate(tokens));
      },
      async step(token) {
        return argmax(await session.evaluate([token]));
      },
      async close() {
        session.dispose();
        model.dispose();
      },
      sparseBytes() {
        const st = model.stats;
        return st.sparseBytesRead === undefined ? null : { read: st.sparseBytesRead, dense: st.sparseBytesDense ?? 0 };
      },
    };
  },
};

// ---------------------------------------------------------------------------------------
// node-llama-cpp 3.x: getLlama -> loadModel -> createContext -> getSequence; generation
// through seq.evaluate(tokens, { temperature: 0 }), an async generator that yields each
// sampled token and evaluates whatever token is passed to next(token).

type NodeLlamaCpp = typeof import('node-llama-cpp');
type Llama = Awaited<ReturnType<NodeLlamaCpp['getLlama']>>;

/** node-llama-cpp, or null when it is not installed. */
export async function importNodeLlamaCpp(): Promise<NodeLlamaCpp | null> {
  try {
    return await import('node-llama-cpp');
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return null;
    throw err;
  }
}

let llamaInstance: Llama | undefined;
let llamaInfo: EngineInfo | undefined;

const llamaCpp: Engine = {
  async init() {
    if (llamaInfo) return llamaInfo;
    const lib = await importNodeLlamaCpp();
    if (!lib) throw new SparrowError(`node-llama-cpp is not installed (add it with \`${LLAMA_INSTALL_HINT}\`)`, 'ERR_NO_PEER');
    // The CPU, like sparrow here (--gpu vulkan: its Vulkan build, the optional package
    // @node-llama-cpp/linux-x64-vulkan of the same version; never a build from source).
    // maxThreads 0 lifts its default cap so --threads is obeyed.
    try {
      llamaInstance = await lib.getLlama({ gpu: benchGpu, build: 'never', logLevel: lib.LlamaLogLevel.error, maxThreads: 0 });
    } catch (err) {
      if (!benchGpu) throw err;
      throw new SparrowError(
        `node-llama-cpp's Vulkan build is not available (npm i -D @node-llama-cpp/${process.platform}-${process.arch}-vulkan@3.21.1): ${(err as Error).message}`,
        'ERR_NO_PEER',
      );
    }
    const v = await lib.getModuleVersion().catch(() => undefined);
    llamaInfo = { version: `node-llama-cpp ${v ?? '?'} (llama.cpp ${llamaInstance.llamaCppRelease.release}, ${benchGpu || 'cpu'})` };
    return llamaInfo;
  },
  async load(path, o) {
    const info = await this.init();
    const llama = llamaInstance!;
    const model = await llama.loadModel({ modelPath: path });
    const ctx = await model.createContext({
      contextSize: o.contextSize,
      threads: o.threads,
      batchSize: o.batchSize,
      flashAttention: false,
    });
    const seq = ctx.getSequence();
    type Gen = AsyncGenerator<number, void, number | number[] | void>;
    let gen: Gen | undefined;
    const stop = async () => {
      if (gen) await gen.return();
      gen = undefined;
    };
    return {
      info,
      async reset() {
        await stop();
        await seq.clearHistory();
      },
      async prompt(tokens) {
        await stop();
        // yieldEogToken: a random model may pick the end-of-generation token; keep going.
        gen = seq.evaluate(tokens as never, { temperature: 0, yieldEogToken: true }) as unknown as Gen;
        const r = await gen.next();
        if (r.done) throw new SparrowError('node-llama-cpp ended the generation early', 'ERR_INTERNAL');
        return r.value;
      },
      async step(token) {
        if (!gen) throw new SparrowError('step() before prompt()', 'ERR_INTERNAL');
        const r = await gen.next(token);
        if (r.done) throw new SparrowError('node-llama-cpp ended the generation early', 'ERR_INTERNAL');
        return r.value;
      },
      async close() {
        await stop();
        await ctx.dispose();
        await model.dispose();
      },
    };
  },
};

export function engine(name: EngineName): Engine {
  return name === 'sparrow' ? sparrow : llamaCpp;
}
