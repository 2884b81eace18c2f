/**
 * A streaming GGUF v3 writer.
 *
 *   await writeGGUF(path, metadata, tensors, { onProgress })
 *
 * The header (metadata and tensor table) is built in memory; tensor data is produced and
 * written tensor by tensor, in chunks of rows, so files of any size never sit in memory.
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
import { GGML_TYPES, type GGMLTypeName, rowBytes } from './ggml-types.js';

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

/** Fills `dst` with the bytes of rows [firstRow, firstRow + rowCount) of the tensor. */
export type TensorFiller = (dst: Uint8Array, firstRow: number, rowCount: number) => void;

export interface GGUFTensorSpec {
  name: string;
  type: GGMLTypeName;
  /** GGUF order (ggml `ne`): shape[0] is the contiguous row length. */
  shape: readonly number[];
  /** The whole tensor's bytes, or a filler called row chunk by row chunk, in order. */
  data: Uint8Array | TensorFiller;
}

export interface WriteGGUFOptions {
  /** Tensor data alignment; written as `general.alignment` unless the metadata has it. Default 32. */
  alignment?: number;
  /** Called after every chunk with bytes written so far and the file's total size. */
  onProgress?: (written: number, total: number) => void;
  /** Target size of one write (default 4 MiB). */
  chunkBytes?: number;
}

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
    throw new TypeError(`GGUF metadata ${key}: ${String(v)} is not an integer in [${lo}, ${hi}]`);
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
        throw new TypeError(`GGUF metadata ${key}: ${String(v)} is not a 64-bit integer`);
      if (type === 'u64' && v < 0) throw new TypeError(`GGUF metadata ${key}: ${String(v)} is negative`);
      return type === 'u64' ? b.u64(v) : b.i64(v);
    }
    case 'f32':
    case 'f64':
      if (typeof v !== 'number') throw new TypeError(`GGUF metadata ${key}: ${String(v)} is not a number`);
      return type === 'f32' ? b.f32(v) : b.f64(v);
    case 'bool':
      if (typeof v !== 'boolean') throw new TypeError(`GGUF metadata ${key}: ${String(v)} is not a boolean`);
      return b.u8(v ? 1 : 0);
    case 'string':
      if (typeof v !== 'string') throw new TypeError(`GGUF metadata ${key}: ${String(v)} is not a string`);
      return b.string(v);
    default:
      throw new TypeError(`GGUF metadata ${key}: unknown value type ${String(type)}`);
  }
}

function normalize(key: string, v: GGUFValue): GGUFScalar | GGUFArray {
  if (typeof v === 'string') return { type: 'string', value: v };
  if (typeof v === 'boolean') return { type: 'bool', value: v };
  if (Array.isArray(v)) {
    if (!v.every((s) => typeof s === 'string'))
      throw new TypeError(`GGUF metadata ${key}: untyped arrays must hold strings; use arr(type, values)`);
    return { type: 'array', itemType: 'string', value: v };
  }
  if (v && typeof v === 'object' && typeof (v as GGUFScalar).type === 'string') return v as GGUFScalar | GGUFArray;
  throw new TypeError(
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
  tensors: ReadonlyArray<Pick<GGUFTensorSpec, 'name' | 'type' | 'shape'>>,
  alignment = GGUF_DEFAULT_ALIGNMENT,
): GGUFLayout {
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0)
    throw new RangeError(`alignment must be a positive multiple of 8, got ${alignment}`);
  let kv = entries(metadata).map(([k, v]) => [k, normalize(k, v)] as const);
  const keys = new Set<string>();
  for (const [k] of kv) {
    if (keys.has(k)) throw new Error(`GGUF metadata: duplicate key ${k}`);
    keys.add(k);
  }
  const align = kv.find(([k]) => k === 'general.alignment');
  if (align) {
    if (align[1].type !== 'u32' || align[1].value !== alignment)
      throw new Error(`general.alignment in the metadata must be u32(${alignment})`);
  } else {
    const at = kv.findIndex(([k]) => k === 'general.architecture') + 1;
    kv = [...kv.slice(0, at), ['general.alignment', u32(alignment)] as const, ...kv.slice(at)];
  }

  const names = new Set<string>();
  const offsets: number[] = [];
  const sizes: number[] = [];
  let dataSize = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`GGUF: duplicate tensor ${t.name}`);
    names.add(t.name);
    if (!GGML_TYPES[t.type]) throw new Error(`GGUF tensor ${t.name}: unknown type ${t.type}`);
    if (t.shape.length < 1 || t.shape.length > 4 || t.shape.some((d) => !Number.isInteger(d) || d < 1))
      throw new Error(`GGUF tensor ${t.name}: bad shape [${t.shape.join(', ')}]`);
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

/** Writes a GGUF file; resolves with its size in bytes. See the module comment. */
export async function writeGGUF(
  file: string,
  metadata: GGUFMetadata,
  tensors: readonly GGUFTensorSpec[],
  options: WriteGGUFOptions = {},
): Promise<number> {
  const layout = encodeGGUFHeader(metadata, tensors, options.alignment ?? GGUF_DEFAULT_ALIGNMENT);
  const chunkBytes = Math.max(1 << 16, options.chunkBytes ?? 4 << 20);
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`,
  );
  await fsp.mkdir(path.dirname(file), { recursive: true });
  const fh = await fsp.open(tmp, 'w');
  let ok = false;
  try {
    let pos = 0;
    const total = layout.fileSize;
    // Two buffers: one is being written by the thread pool while the next is filled.
    const bufs = [new Uint8Array(chunkBytes + 64), new Uint8Array(chunkBytes + 64)];
    let which = 0;
    let pending: Promise<unknown> | null = null;
    const put = async (bytes: Uint8Array): Promise<void> => {
      if (pending) await pending;
      const at = pos;
      pos += bytes.length;
      pending = fh.write(bytes, 0, bytes.length, at).then(() => options.onProgress?.(at + bytes.length, total));
    };
    await put(layout.header);
    const dataStart = layout.header.length;
    for (let ti = 0; ti < tensors.length; ti++) {
      const t = tensors[ti];
      const padTo = dataStart + layout.offsets[ti];
      if (pos < padTo) await put(new Uint8Array(padTo - pos));
      const size = layout.sizes[ti];
      if (t.data instanceof Uint8Array) {
        if (t.data.length !== size)
          throw new Error(`GGUF tensor ${t.name}: data has ${t.data.length} bytes, its shape needs ${size}`);
        for (let o = 0; o < size; o += chunkBytes) await put(t.data.subarray(o, Math.min(size, o + chunkBytes)));
        continue;
      }
      const rb = rowBytes(t.type, t.shape[0]);
      const rows = size / rb;
      const rowsPerChunk = Math.max(1, Math.floor(chunkBytes / rb));
      for (let r = 0; r < rows; r += rowsPerChunk) {
        const n = Math.min(rowsPerChunk, rows - r);
        if (n * rb > bufs[which].length) {
          // one row bigger than a chunk
          if (pending) await pending;
          bufs[which] = new Uint8Array(n * rb + 64);
        }
        if (pending) await pending; // the buffer we are about to fill may still be in flight
        const dst = bufs[which].subarray(0, n * rb);
        t.data(dst, r, n);
        await put(dst);
        which ^= 1;
      }
    }
    if (pending) await pending;
    if (pos !== total) throw new Error(`GGUF writer: wrote ${pos} bytes, expected ${total}`);
    await fh.sync().catch(() => undefined);
    ok = true;
  } finally {
    await fh.close();
    if (!ok) await fsp.rm(tmp, { force: true });
  }
  await fsp.rename(tmp, file);
  return layout.fileSize;
}

/** Encodes a whole (small) GGUF file in memory. Fillers are called once with all rows. */
export function encodeGGUF(
  metadata: GGUFMetadata,
  tensors: readonly GGUFTensorSpec[],
  alignment = GGUF_DEFAULT_ALIGNMENT,
): Uint8Array {
  const layout = encodeGGUFHeader(metadata, tensors, alignment);
  const out = new Uint8Array(layout.fileSize);
  out.set(layout.header);
  tensors.forEach((t, i) => {
    const dst = out.subarray(layout.header.length + layout.offsets[i], layout.header.length + layout.offsets[i] + layout.sizes[i]);
    if (t.data instanceof Uint8Array) {
      if (t.data.length !== dst.length)
        throw new Error(`GGUF tensor ${t.name}: data has ${t.data.length} bytes, its shape needs ${dst.length}`);
      dst.set(t.data);
    } else {
      t.data(dst, 0, dst.length / rowBytes(t.type, t.shape[0]));
    }
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
