/**
 * A streaming GGUF v3 writer.
 *
 *   await writeGGUF(path, { metadata, tensors, onProgress })
 *
 * The header (metadata and tensor table) is built in memory; tensor data is produced and
 * written tensor by tensor, chunk by chunk, so files of any size never sit in memory.
 * The file is written under a temporary name beside `path` and renamed when complete:
 * a crash or an error never leaves a half-written file at `path`.
 *
 * Metadata values carry their GGUF type (llama.cpp checks it: `llama.block_count` must be a
 * UINT32, `llama.rope.freq_base` a FLOAT32, ...). Build them with the helpers `u32(5)`,
 * `f32(1e-5)`, `arr('f32', scores)`, ...; plain strings, booleans and string arrays are
 * accepted as they are.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { SparrowError } from '../src/errors.js';
import { GGML_TYPES, type GGMLTypeName, rowBytes } from './ggml-types.js';
/** Bad input: a SparrowError with code ERR_INVALID_ARG. */
const invalid = (message: string): SparrowError => new SparrowError(message, 'ERR_INVALID_ARG');


export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** GGUF metadata value types (gguf.h). */
export const GGUF_VALUE_TYPE = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;

export type GGUFScalarType = Exclude<keyof typeof GGUF_VALUE_TYPE, 'array'>;

export interface GGUFScalar {
  type: GGUFScalarType;
  value: number | bigint | boolean | string;
}
export interface GGUFArray {
  type: 'array';
  itemType: GGUFScalarType | 'array';
  /** Typed arrays work for numeric items (a Float32Array for f32 is written without copying element by element). */
  value: ArrayLike<number | bigint | boolean | string> | GGUFArray[];
}
/** A metadata value: typed, or a plain string / boolean / string[] (typed implicitly). */
export type GGUFValue = GGUFScalar | GGUFArray | string | boolean | string[];
/** Metadata in file order: a list of pairs, or an object (its insertion order). */
export type GGUFMetadata = ReadonlyArray<readonly [string, GGUFValue]> | Readonly<Record<string, GGUFValue>>;

export const u8 = (value: number): GGUFScalar => ({ type: 'u8', value });
export const i8 = (value: number): GGUFScalar => ({ type: 'i8', value });
export const u16 = (value: number): GGUFScalar => ({ type: 'u16', value });
export const i16 = (value: number): GGUFScalar => ({ type: 'i16', value });
export const u32 = (value: number): GGUFScalar => ({ type: 'u32', value });
export const i32 = (value: number): GGUFScalar => ({ type: 'i32', value });
export const f32 = (value: number): GGUFScalar => ({ type: 'f32', value });
export const f64 = (value: number): GGUFScalar => ({ type: 'f64', value });
export const u64 = (value: number | bigint): GGUFScalar => ({ type: 'u64', value });
export const i64 = (value: number | bigint): GGUFScalar => ({ type: 'i64', value });
export const bool = (value: boolean): GGUFScalar => ({ type: 'bool', value });
export const str = (value: string): GGUFScalar => ({ type: 'string', value });
export function arr(itemType: GGUFScalarType | 'array', value: GGUFArray['value']): GGUFArray {
  return { type: 'array', itemType, value };
}

/**
 * A tensor to write. `data` is the whole tensor's bytes, or a function returning an iterable
 * of chunks (e.g. a generator) whose lengths add up to the tensor's size; a chunk must not be
 * modified after it is yielded (it may still be in flight to the disk).
 */
export interface TensorSpec {
  name: string;
  type: GGMLTypeName;
  /** GGUF order (ggml `ne`): shape[0] is the contiguous row length. */
  shape: readonly number[];
  data: Uint8Array | (() => Iterable<Uint8Array>);
}
export type GGUFTensorSpec = TensorSpec;

export interface WriteGGUFRequest {
  /** Metadata in file order. `general.alignment` is added when missing. */
  metadata: GGUFMetadata;
  tensors: readonly TensorSpec[];
  /** Tensor data alignment; written as `general.alignment` unless the metadata has it. Default 32. */
  alignment?: number;
  /** Called after every chunk with bytes written so far and the file's total size. */
  onProgress?: (written: number, total: number) => void;
}

/** The value helpers as one object: `gguf.u32(5)`, `gguf.arr('f32', scores)`, ... */
export const gguf = { u8, i8, u16, i16, u32, i32, f32, f64, u64, i64, bool, str, arr } as const;

export { GGML_TYPES, type GGMLTypeName } from './ggml-types.js';

// ---------------------------------------------------------------------------------------
// Header encoding

class ByteBuilder {
  private buf = new Uint8Array(1 << 16);
  private dv = new DataView(this.buf.buffer);
  length = 0;
  private reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.length + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.dv = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.dv.setUint8(this.length, v);
    this.length += 1;
  }
  i8(v: number): void {
    this.reserve(1);
    this.dv.setInt8(this.length, v);
    this.length += 1;
  }
  u16(v: number): void {
    this.reserve(2);
    this.dv.setUint16(this.length, v, true);
    this.length += 2;
  }
  i16(v: number): void {
    this.reserve(2);
    this.dv.setInt16(this.length, v, true);
    this.length += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.dv.setUint32(this.length, v, true);
    this.length += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.dv.setInt32(this.length, v, true);
    this.length += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.dv.setFloat32(this.length, v, true);
    this.length += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.dv.setFloat64(this.length, v, true);
    this.length += 8;
  }
  u64(v: number | bigint): void {
    this.reserve(8);
    this.dv.setBigUint64(this.length, BigInt(v), true);
    this.length += 8;
  }
  i64(v: number | bigint): void {
    this.reserve(8);
    this.dv.setBigInt64(this.length, BigInt(v), true);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  string(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.bytes(b);
  }
  pad(alignment: number): void {
    const n = (alignment - (this.length % alignment)) % alignment;
    this.reserve(n);
    this.buf.fill(0, this.length, this.length + n);
    this.length += n;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }
}

function checkInt(key: string, v: unknown, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
    throw invalid(`GGUF metadata ${key}: ${String(v)} is not an integer in [${lo}, ${hi}]`);
  return v;
}

function writeScalar(b: ByteBuilder, key: string, type: GGUFScalarType, v: unknown): void {
  switch (type) {
    case 'u8': return b.u8(checkInt(key, v, 0, 0xff));
    case 'i8': return b.i8(checkInt(key, v, -0x80, 0x7f));
    case 'u16': return b.u16(checkInt(key, v, 0, 0xffff));
    case 'i16': return b.i16(checkInt(key, v, -0x8000, 0x7fff));
    case 'u32': return b.u32(checkInt(key, v, 0, 0xffffffff));
    case 'i32': return b.i32(checkInt(key, v, -0x80000000, 0x7fffffff));
    case 'u64':
    case 'i64': {
      if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isSafeInteger(v)))
        throw invalid(`GGUF metadata ${key}: ${String(v)} is not a 64-bit integer`);
      if (type === 'u64' && v < 0) throw invalid(`GGUF metadata ${key}: ${String(v)} is negative`);
      return type === 'u64' ? b.u64(v) : b.i64(v);
    }
    case 'f32':
    case 'f64':
      if (typeof v !== 'number') throw invalid(`GGUF metadata ${key}: ${String(v)} is not a number`);
      return type === 'f32' ? b.f32(v) : b.f64(v);
    case 'bool':
      if (typeof v !== 'boolean') throw invalid(`GGUF metadata ${key}: ${String(v)} is not a boolean`);
      return b.u8(v ? 1 : 0);
    case 'string':
      if (typeof v !== 'string') throw invalid(`GGUF metadata ${key}: ${String(v)} is not a string`);
      return b.string(v);
    default:
      throw invalid(`GGUF metadata ${key}: unknown value type ${String(type)}`);
  }
}

function normalize(key: string, v: GGUFValue): GGUFScalar | GGUFArray {
  if (typeof v === 'string') return { type: 'string', value: v };
  if (typeof v === 'boolean') return { type: 'bool', value: v };
  if (Array.isArray(v)) {
    if (!v.every((s) => typeof s === 'string'))
      throw invalid(`GGUF metadata ${key}: untyped arrays must hold strings; use arr(type, values)`);
    return { type: 'array', itemType: 'string', value: v };
  }
  if (v && typeof v === 'object' && typeof (v as GGUFScalar).type === 'string') return v as GGUFScalar | GGUFArray;
  throw invalid(
    `GGUF metadata ${key}: ${typeof v} values need a type; use u32(), f32(), ... from models/gguf-writer`,
  );
}

function writeValue(b: ByteBuilder, key: string, v: GGUFScalar | GGUFArray): void {
  b.u32(GGUF_VALUE_TYPE[v.type]);
  writeValueBody(b, key, v);
}

function writeValueBody(b: ByteBuilder, key: string, v: GGUFScalar | GGUFArray): void {
  if (v.type !== 'array') return writeScalar(b, key, v.type, v.value);
  const items = v.value;
  b.u32(GGUF_VALUE_TYPE[v.itemType]);
  b.u64(items.length);
  if (v.itemType === 'array') {
    for (let i = 0; i < items.length; i++) writeValueBody(b, `${key}[${i}]`, normalize(key, items[i] as GGUFArray));
  } else if (v.itemType === 'f32' && items instanceof Float32Array) {
    b.bytes(new Uint8Array(Float32Array.from(items).buffer)); // little-endian hosts only (all supported ones)
  } else if (v.itemType === 'i32' && items instanceof Int32Array) {
    b.bytes(new Uint8Array(Int32Array.from(items).buffer));
  } else {
    const t = v.itemType;
    for (let i = 0; i < items.length; i++) writeScalar(b, `${key}[${i}]`, t, items[i]);
  }
}

function entries(metadata: GGUFMetadata): Array<readonly [string, GGUFValue]> {
  return Array.isArray(metadata)
    ? (metadata as Array<readonly [string, GGUFValue]>)
    : Object.entries(metadata as Record<string, GGUFValue>);
}

export interface GGUFLayout {
  /** Header bytes, padded to the alignment: tensor data starts right after. */
  header: Uint8Array;
  /** Offset of each tensor's data relative to the start of the data section. */
  offsets: number[];
  /** Size of each tensor's data in bytes. */
  sizes: number[];
  /** Total file size. */
  fileSize: number;
  alignment: number;
}

/**
 * Encodes the header of a GGUF file (metadata + tensor table), computing aligned offsets.
 * `general.alignment` is added (as the first key after `general.architecture`, or first)
 * when the metadata lacks it and the alignment is given.
 */
export function encodeGGUFHeader(
  metadata: GGUFMetadata,
  tensors: ReadonlyArray<Pick<TensorSpec, 'name' | 'type' | 'shape'>>,
  alignment = GGUF_DEFAULT_ALIGNMENT,
): GGUFLayout {
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0)
    throw invalid(`alignment must be a positive multiple of 8, got ${alignment}`);
  let kv = entries(metadata).map(([k, v]) => [k, normalize(k, v)] as const);
  const keys = new Set<string>();
  for (const [k] of kv) {
    if (keys.has(k)) throw invalid(`GGUF metadata: duplicate key ${k}`);
    keys.add(k);
  }
  const align = kv.find(([k]) => k === 'general.alignment');
  if (align) {
    if (align[1].type !== 'u32' || align[1].value !== alignment)
      throw invalid(`general.alignment in the metadata must be u32(${alignment})`);
  } else {
    const at = kv.findIndex(([k]) => k === 'general.architecture') + 1;
    kv = [...kv.slice(0, at), ['general.alignment', u32(alignment)] as const, ...kv.slice(at)];
  }

  const names = new Set<string>();
  const offsets: number[] = [];
  const sizes: number[] = [];
  let dataSize = 0;
  for (const t of tensors) {
    if (typeof t?.name !== 'string' || t.name.length === 0) throw invalid('GGUF tensors: every tensor needs a non-empty name');
    if (names.has(t.name)) throw invalid(`GGUF: duplicate tensor ${t.name}`);
    names.add(t.name);
    if (!GGML_TYPES[t.type]) throw invalid(`GGUF tensor ${t.name}: unknown type ${t.type}`);
    if (!Array.isArray(t.shape) || t.shape.length < 1 || t.shape.length > 4 || t.shape.some((d) => !Number.isSafeInteger(d) || d < 1))
      throw invalid(`GGUF tensor ${t.name}: bad shape [${String(t.shape)}] (1 to 4 positive integers)`);
    if (t.shape[0] % GGML_TYPES[t.type].blockSize !== 0)
      throw invalid(
        `GGUF tensor ${t.name}: type ${t.type} needs a row length (shape[0]) that is a multiple of ${GGML_TYPES[t.type].blockSize}, got ${t.shape[0]}`,
      );
    let rows = 1;
    for (let i = 1; i < t.shape.length; i++) rows *= t.shape[i];
    const size = rowBytes(t.type, t.shape[0]) * rows;
    dataSize += (alignment - (dataSize % alignment)) % alignment;
    offsets.push(dataSize);
    sizes.push(size);
    dataSize += size;
  }

  const b = new ByteBuilder();
  b.u32(GGUF_MAGIC);
  b.u32(GGUF_VERSION);
  b.u64(tensors.length);
  b.u64(kv.length);
  for (const [k, v] of kv) {
    b.string(k);
    writeValue(b, k, v);
  }
  tensors.forEach((t, i) => {
    b.string(t.name);
    b.u32(t.shape.length);
    for (const d of t.shape) b.u64(d);
    b.u32(GGML_TYPES[t.type].id);
    b.u64(offsets[i]);
  });
  b.pad(alignment);
  const header = b.result();
  return { header, offsets, sizes, fileSize: header.length + dataSize, alignment };
}

// ---------------------------------------------------------------------------------------
// Streaming writer

/** Writes a GGUF file atomically (temp file + rename); resolves with its size. See the module comment. */
export async function writeGGUF(file: string, request: WriteGGUFRequest): Promise<{ bytes: number }> {
  if (typeof file !== 'string' || file.length === 0) throw invalid('writeGGUF: path must be a non-empty string');
  if (!request || typeof request !== 'object' || !Array.isArray(request.tensors))
    throw invalid('writeGGUF: the request must be an object with metadata and a tensors array');
  const { tensors, onProgress } = request;
  const layout = encodeGGUFHeader(request.metadata, tensors, request.alignment ?? GGUF_DEFAULT_ALIGNMENT);
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`,
  );
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const fh = await fsp.open(tmp, 'w');
  let ok = false;
  // At most one write in flight: the next chunk is generated while the previous one is written.
  let pending: Promise<unknown> | null = null;
  try {
    let pos = 0;
    const total = layout.fileSize;
    const put = async (bytes: Uint8Array): Promise<void> => {
      if (pending) await pending;
      const at = pos;
      pos += bytes.length;
      pending = fh.write(bytes, 0, bytes.length, at).then(() => onProgress?.(at + bytes.length, total));
    };
    await put(layout.header);
    const dataStart = layout.header.length;
    const WRITE_CHUNK = 4 << 20;
    for (let ti = 0; ti < tensors.length; ti++) {
      const t = tensors[ti];
      const padTo = dataStart + layout.offsets[ti];
      if (pos < padTo) await put(new Uint8Array(padTo - pos));
      const size = layout.sizes[ti];
      if (t.data instanceof Uint8Array) {
        if (t.data.length !== size)
          throw invalid(`GGUF tensor ${t.name}: data has ${t.data.length} bytes, its shape needs ${size}`);
        for (let o = 0; o < size; o += WRITE_CHUNK) await put(t.data.subarray(o, Math.min(size, o + WRITE_CHUNK)));
        continue;
      }
      let got = 0;
      for (const chunk of t.data()) {
        got += chunk.length;
        if (got > size) throw invalid(`GGUF tensor ${t.name}: its generator gave more than ${size} bytes`);
        if (chunk.length) await put(chunk);
      }
      if (got !== size) throw invalid(`GGUF tensor ${t.name}: its generator gave ${got} bytes, its shape needs ${size}`);
    }
    if (pending) await pending;
    if (pos !== total) throw invalid(`GGUF writer: wrote ${pos} bytes, expected ${total}`);
    ok = true;
  } finally {
    // On an error, let a write still in flight settle before closing (and never leave its
    // rejection unhandled).
    if (!ok && pending) await (pending as Promise<unknown>).catch(() => undefined);
    await fh.close();
    if (!ok) await fsp.rm(tmp, { force: true });
  }
  await fsp.rename(tmp, file);
  return { bytes: layout.fileSize };
}

/** Encodes a whole (small) GGUF file in memory. */
export function encodeGGUF(request: Omit<WriteGGUFRequest, 'onProgress'>): Uint8Array {
  const { tensors } = request;
  const layout = encodeGGUFHeader(request.metadata, tensors, request.alignment ?? GGUF_DEFAULT_ALIGNMENT);
  const out = new Uint8Array(layout.fileSize);
  out.set(layout.header);
  tensors.forEach((t, i) => {
    const at = layout.header.length + layout.offsets[i];
    const size = layout.sizes[i];
    if (t.data instanceof Uint8Array) {
      if (t.data.length !== size)
        throw invalid(`GGUF tensor ${t.name}: data has ${t.data.length} bytes, its shape needs ${size}`);
      out.set(t.data, at);
      return;
    }
    let got = 0;
    for (const chunk of t.data()) {
      if (got + chunk.length > size) throw invalid(`GGUF tensor ${t.name}: its generator gave more than ${size} bytes`);
      out.set(chunk, at + got);
      got += chunk.length;
    }
    if (got !== size) throw invalid(`GGUF tensor ${t.name}: its generator gave ${got} bytes, its shape needs ${size}`);
  });
  return out;
}

/** Synchronous existence check that tolerates races (used by the cache). */
export function fileExists(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}
