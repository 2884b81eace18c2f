/**
 * The models a run measures: synthetic files of real shapes from the catalogue (written
 * once into the cache, with a progress bar) or a GGUF file the user names.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SparrowError } from '../src/errors.js';
import { modelCacheDir, syntheticModel, syntheticModelFileName } from '../models/cache.js';
import { isMixName, MIXES } from '../models/synthetic.js';
import { inspectGGUF } from '../src/gguf.js';
import type { ModelSpec } from './options.js';
import { progressBar } from './progress.js';

export interface ResolvedModel {
  /** 'tinyllama-1.1b q4_0', or the file's name. */
  name: string;
  path: string;
  fileBytes: number;
  /** Bytes of weights one decode step reads. */
  weightBytesPerToken: number;
  nVocab: number;
}

/**
 * What a decode step reads, from the file's tensor table: every tensor in full except the
 * token embedding, of which one row is read (when the model has a separate output matrix;
 * with tied embeddings the output projection reads all of it). KV-cache reads are left
 * out: at the context lengths measured here they are a few percent of the weights.
 */
export function weightBytesPerToken(tensors: { name: string; bytes: number; shape: number[] }[]): { bytes: number; nVocab: number } {
  const embd = tensors.find((t) => t.name === 'token_embd.weight');
  const hasOutput = tensors.some((t) => t.name === 'output.weight');
  const nVocab = embd?.shape[1] ?? 32000;
  let bytes = 0;
  for (const t of tensors) bytes += t.bytes;
  if (embd && hasOutput) bytes -= embd.bytes - embd.bytes / nVocab;
  return { bytes: Math.round(bytes), nVocab };
}

export function describeFile(file: string, name: string): ResolvedModel {
  const info = inspectGGUF(file);
  const { bytes, nVocab } = weightBytesPerToken(info.tensors);
  return { name, path: file, fileBytes: info.fileSize, weightBytesPerToken: bytes, nVocab };
}

/** Resolves each spec to a file on disk, writing synthetic models that are not cached yet. */
export async function resolveModels(specs: ModelSpec[]): Promise<ResolvedModel[]> {
  const out: ResolvedModel[] = [];
  for (const spec of specs) {
    if (spec.kind === 'file') {
      const file = path.resolve(spec.path);
      if (!fs.existsSync(file)) throw new SparrowError(`--model: no such file: ${spec.path}`, 'ERR_INVALID_ARG');
      out.push(describeFile(file, path.basename(file)));
      continue;
    }
    const label = `${spec.name} ${spec.mix}`;
    const mix = spec.mix;
    if (!isMixName(mix)) throw new SparrowError(`--models: unknown mix '${mix}' in '${spec.name}:${mix}'; known: ${MIXES.join(', ')}`, 'ERR_INVALID_ARG');
    // Throws, listing the catalogue, for an unknown name.
    const cached = fs.existsSync(path.join(modelCacheDir(), syntheticModelFileName(spec.name, mix)));
    const bar = cached ? undefined : progressBar(`writing ${label}`);
    const file = await syntheticModel(spec.name, mix, { onProgress: bar ? (done, total) => bar.update(done, total) : undefined });
    bar?.done(`cached at ${file}`);
    out.push(describeFile(file, label));
  }
  return out;
}
