/**
 * Test helper: copies a tensor-less (vocab-only) GGUF file with some metadata changed, so
 * that one real vocabulary can be run through several pre-tokenizers and options by both
 * this tokenizer and llama.cpp. Only what the tests need: string and bool values.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

type Patch = Record<string, string | boolean>;

const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const T_BOOL = 7;
const T_STRING = 8;
const T_ARRAY = 9;

function encodeString(s: string): Buffer {
  const bytes = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(bytes.length));
  return Buffer.concat([len, bytes]);
}

function encodeKv(key: string, value: string | boolean): Buffer {
  const type = Buffer.alloc(4);
  if (typeof value === 'string') {
    type.writeUInt32LE(T_STRING);
    return Buffer.concat([encodeString(key), type, encodeString(value)]);
  }
  type.writeUInt32LE(T_BOOL);
  return Buffer.concat([encodeString(key), type, Buffer.of(value ? 1 : 0)]);
}

/** Writes a patched copy of `src` into the OS temp folder and returns its path. */
export function patchGGUF(src: string, patch: Patch, name: string): string {
  const buf = fs.readFileSync(src);
  if (buf.toString('latin1', 0, 4) !== 'GGUF') throw new Error(`${src}: not a GGUF file`);
  const nTensors = buf.readBigUInt64LE(8);
  if (nTensors !== 0n) throw new Error(`${src}: patchGGUF only handles files without tensors`);
  const nKv = Number(buf.readBigUInt64LE(16));
  let off = 24;
  const readLen = () => {
    const n = Number(buf.readBigUInt64LE(off));
    off += 8;
    return n;
  };
  const skipValue = (type: number) => {
    if (type === T_STRING) {
      const n = readLen();
      off += n;
    } else if (type === T_ARRAY) {
      const elem = buf.readUInt32LE(off);
      off += 4;
      const n = readLen();
      if (elem === T_STRING) {
        for (let i = 0; i < n; i++) {
          const len = readLen();
          off += len;
        }
      }
      else off += n * SCALAR_SIZE[elem]!;
    } else {
      off += SCALAR_SIZE[type]!;
    }
  };
  const kvs: Buffer[] = [];
  const pending = new Map(Object.entries(patch));
  for (let i = 0; i < nKv; i++) {
    const start = off;
    const keyLen = readLen();
    const key = buf.toString('utf8', off, off + keyLen);
    off += keyLen;
    const type = buf.readUInt32LE(off);
    off += 4;
    skipValue(type);
    if (pending.has(key)) {
      kvs.push(encodeKv(key, pending.get(key)!));
      pending.delete(key);
    } else {
      kvs.push(buf.subarray(start, off));
    }
  }
  for (const [key, value] of pending) kvs.push(encodeKv(key, value));
  const header = Buffer.alloc(24);
  buf.copy(header, 0, 0, 8);
  header.writeBigUInt64LE(0n, 8);
  header.writeBigUInt64LE(BigInt(kvs.length), 16);
  let out = Buffer.concat([header, ...kvs]);
  const pad = (32 - (out.length % 32)) % 32;
  out = Buffer.concat([out, Buffer.alloc(pad)]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-vocab-'));
  const file = path.join(dir, `${name}.gguf`);
  fs.writeFileSync(file, out);
  return file;
}
