/**
 * Reading GGUF headers. `inspectGGUF(path)` parses and validates the file's metadata and
 * tensor table without reading tensor data (the file is memory-mapped by the addon).
 * Any fault in the file throws a GGUFError whose message names the field or tensor.
 */
import { addon } from './native.js';
import { SparrowError } from './errors.js';

/** A metadata value. 64-bit integers are numbers when safe, bigints otherwise. */
export type GGUFMetadataValue = number | bigint | boolean | string | GGUFMetadataValue[];

export interface GGUFTensorInfo {
  name: string;
  /** ggml type name: 'F32', 'F16', 'Q4_0', 'Q4_K', ... */
  type: string;
  /** ggml type id, as stored in the file. */
  typeId: number;
  /** Dimensions in GGUF order: shape[0] is the contiguous (row) dimension. */
  shape: number[];
  /** Absolute byte offset of the tensor's data in the file. */
  offset: number;
  /** Size of the tensor's data in bytes. */
  bytes: number;
}

export interface GGUFInfo {
  version: number;
  alignment: number;
  /** Byte offset where the tensor data section starts. */
  dataOffset: number;
  fileSize: number;
  metadata: Record<string, GGUFMetadataValue>;
  tensors: GGUFTensorInfo[];
}

interface GGUFAddon {
  inspectGGUF(path: string): GGUFInfo;
  inspectGGUFBuffer(bytes: Uint8Array): GGUFInfo;
}

/**
 * Parses the header of a GGUF file (a path) or of GGUF bytes already in memory.
 * For bytes, `offset` and `dataOffset` count from the start of the buffer.
 * Throws GGUFError (with a `code` such as ERR_GGUF_TRUNCATED) for any fault in the file.
 */
export function inspectGGUF(source: string | Uint8Array): GGUFInfo {
  if (source instanceof Uint8Array) return addon<GGUFAddon>().inspectGGUFBuffer(source);
  if (typeof source !== 'string' || source.length === 0)
    throw new SparrowError('inspectGGUF: expected a file path (non-empty string) or a Uint8Array', 'ERR_INVALID_ARG');
  return addon<GGUFAddon>().inspectGGUF(source);
}

/**
 * @internal Metadata as the model loader hands it over: large string arrays as one UTF-8
 * buffer and offsets, large numeric arrays as typed arrays (cheap to pass from C++).
 */
export type PackedMetadata = Record<string, GGUFMetadataValue | { bytes: Buffer; offsets: Uint32Array } | Float32Array | Int32Array | Uint32Array>;

/** @internal Rebuilds plain metadata (as inspectGGUF gives it) from packed metadata, as steps (see tokenizer/slices.ts). */
export function* unpackMetadata(packed: PackedMetadata): Generator<void, Record<string, GGUFMetadataValue>, void> {
  const out: Record<string, GGUFMetadataValue> = {};
  for (const [key, v] of Object.entries(packed)) {
    if (ArrayBuffer.isView(v)) {
      const arr = new Array<number>(v.length);
      for (let i = 0; i < v.length; i++) {
        if (i % 8192 === 0) yield;
        arr[i] = v[i]!;
      }
      out[key] = arr;
    } else if (typeof v === 'object' && v !== null && !Array.isArray(v) && 'offsets' in v) {
      const { bytes, offsets } = v;
      const n = offsets.length - 1;
      const arr = new Array<string>(n);
      for (let i = 0; i < n; i++) {
        if (i % 2048 === 0) yield;
        arr[i] = bytes.toString('utf8', offsets[i]!, offsets[i + 1]!);
      }
      out[key] = arr;
    } else {
      out[key] = v as GGUFMetadataValue;
    }
  }
  return out;
}
