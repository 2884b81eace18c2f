/**
 * Hand-made hostile GGUF files, one per category of llama.cpp's own GGUF reader test
 * (tests/test-gguf.cpp, "handcrafted" files: bad magic, versions 0/1/future, lying
 * tensor and KV counts, bad key sizes, bad value types, duplicate keys, bad alignment,
 * bad dimension counts, shapes, too-large tensors, bad types, bad offsets, duplicate
 * names, misaligned data, not enough data), plus the valid cases it expects to pass.
 * Each must give the outcome llama.cpp's test expects (accepted or rejected), and a
 * rejection must be a GGUFError with the code that names the fault. The files are
 * built here byte by byte, independently of the writer in models/.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GGUFError, inspectGGUF } from '../../src/index.js';

class Bytes {
  parts: number[] = [];
  u8(v: number) { this.parts.push(v & 0xff); return this; }
  u32(v: number) { for (let i = 0; i < 4; i++) this.u8(Number((BigInt(v) >> BigInt(8 * i)) & 0xffn)); return this; }
  u64(v: number | bigint) { const b = BigInt.asUintN(64, BigInt(v)); for (let i = 0n; i < 8n; i++) this.u8(Number((b >> (8n * i)) & 0xffn)); return this; }
  i64(v: number | bigint) { return this.u64(BigInt.asUintN(64, BigInt(v))); }
  str(s: string, len?: number) { const e = new TextEncoder().encode(s); this.u64(len ?? e.length); for (const c of e) this.u8(c); return this; }
  f32(v: number) { const b = new Uint8Array(new Float32Array([v]).buffer); for (const c of b) this.u8(c); return this; }
  pad(align: number) { while (this.parts.length % align) this.u8(0); return this; }
  zeros(n: number) { for (let i = 0; i < n; i++) this.u8(0); return this; }
  get length() { return this.parts.length; }
  done() { return Uint8Array.from(this.parts); }
}

interface Tensor { name: string; dims: (number | bigint)[]; type: number; offset: number | bigint }
interface Spec {
  magic?: string; version?: number; nTensors?: number | bigint; nKv?: number | bigint;
  kv?: ((b: Bytes) => void)[]; tensors?: Tensor[]; data?: number; align?: number;
}

const kvU32 = (key: string, v: number) => (b: Bytes) => b.str(key).u32(4).u32(v);
const kvStr = (key: string, v: string) => (b: Bytes) => b.str(key).u32(8).str(v);

function build(s: Spec): Uint8Array {
  const b = new Bytes();
  for (const c of s.magic ?? 'GGUF') b.u8(c.charCodeAt(0));
  b.u32(s.version ?? 3);
  const kv = s.kv ?? [];
  const tensors = s.tensors ?? [];
  b.u64(s.nTensors ?? tensors.length).u64(s.nKv ?? kv.length);
  for (const k of kv) k(b);
  for (const t of tensors) {
    b.str(t.name).u32(t.dims.length);
    for (const d of t.dims) b.i64(d);
    b.u32(t.type).u64(t.offset);
  }
  if (s.data !== undefined) b.pad(s.align ?? 32).zeros(s.data);
  return b.done();
}

const F32 = 0;
const Q4_0 = 2;
const ok2 = (over: Partial<Tensor> = {}): Tensor => ({ name: 'w', dims: [32, 2], type: F32, offset: 0, ...over });

const cases: [string, Spec, string | null][] = [
  ['bad magic', { magic: 'GGUX' }, 'ERR_GGUF_MAGIC'],
  ['version 0', { version: 0 }, 'ERR_GGUF_VERSION'],
  ['version 1', { version: 1 }, 'ERR_GGUF_VERSION'],
  ['future version', { version: 4 }, 'ERR_GGUF_VERSION'],
  ['tensor count larger than the file', { nTensors: 1n << 40n }, 'ERR_GGUF_BAD_COUNT'],
  ['tensor count -1', { nTensors: -1 }, 'ERR_GGUF_BAD_COUNT'],
  ['KV count larger than the file', { nKv: 1n << 40n }, 'ERR_GGUF_BAD_COUNT'],
  ['empty header (valid)', {}, null],
  ['key size past the end', { kv: [(b) => b.str('general.name', 1 << 30)] }, 'ERR_GGUF_BAD_STRING'],
  ['key size -1', { kv: [(b) => b.u64(-1).zeros(32)] }, 'ERR_GGUF_BAD_STRING'],
  ['bad value type', { kv: [(b) => b.str('general.name').u32(13).u32(0)] }, 'ERR_GGUF_BAD_VALUE_TYPE'],
  ['bad array element type', { kv: [(b) => b.str('a').u32(9).u32(77).u64(1)] }, 'ERR_GGUF_BAD_VALUE_TYPE'],
  ['array count past the end', { kv: [(b) => b.str('a').u32(9).u32(6).u64(1n << 50n).f32(1)] }, 'ERR_GGUF_BAD_ARRAY'],
  ['string value size past the end', { kv: [(b) => b.str('s').u32(8).u64(1n << 60n)] }, 'ERR_GGUF_TRUNCATED'],
  ['duplicate key', { kv: [kvStr('general.name', 'a'), kvStr('general.name', 'b')] }, 'ERR_GGUF_DUPLICATE_KEY'],
  ['alignment 0', { kv: [kvU32('general.alignment', 0)] }, 'ERR_GGUF_BAD_ALIGNMENT'],
  ['alignment not a power of two', { kv: [kvU32('general.alignment', 33)] }, 'ERR_GGUF_BAD_ALIGNMENT'],
  ['alignment of the wrong type', { kv: [kvStr('general.alignment', '32')] }, 'ERR_GGUF_BAD_ALIGNMENT'],
  ['KV only (valid)', { kv: [kvStr('general.name', 'x'), kvU32('general.alignment', 64)] }, null],
  ['0 dimensions', { tensors: [ok2({ dims: [] })], data: 256 }, 'ERR_GGUF_BAD_SHAPE'],
  ['5 dimensions', { tensors: [ok2({ dims: [32, 1, 1, 1, 1] })], data: 256 }, 'ERR_GGUF_BAD_SHAPE'],
  ['negative dimension', { tensors: [ok2({ dims: [32, -2] })], data: 256 }, 'ERR_GGUF_BAD_SHAPE'],
  ['row not a multiple of the block', { tensors: [ok2({ dims: [33, 2], type: Q4_0 })], data: 256 }, 'ERR_GGUF_BAD_SHAPE'],
  ['element count overflows', { tensors: [ok2({ dims: [1n << 32n, 1n << 32n] })], data: 256 }, 'ERR_GGUF_BAD_SHAPE'],
  ['tensor too large for the file', { tensors: [ok2({ dims: [1n << 20n, 1n << 20n] })], data: 256 }, 'ERR_GGUF_BAD_OFFSET'],
  ['bad tensor type', { tensors: [ok2({ type: 31 })], data: 256 }, 'ERR_GGUF_BAD_TENSOR_TYPE'],
  ['bad tensor type 0xffffffff', { tensors: [ok2({ type: 0xffffffff })], data: 256 }, 'ERR_GGUF_BAD_TENSOR_TYPE'],
  ['offset past the end', { tensors: [ok2({ offset: 1n << 40n })], data: 256 }, 'ERR_GGUF_BAD_OFFSET'],
  ['offset + size wraps around', { tensors: [ok2({ offset: (1n << 64n) - 32n })], data: 256 }, 'ERR_GGUF_BAD_OFFSET'],
  ['misaligned offset', { tensors: [ok2({ offset: 8 })], data: 256 }, 'ERR_GGUF_BAD_OFFSET'],
  ['duplicate tensor name', { tensors: [ok2(), ok2({ offset: 256 })], data: 512 }, 'ERR_GGUF_DUPLICATE_TENSOR'],
  ['overlapping tensors', { tensors: [ok2(), ok2({ name: 'v', offset: 0 })], data: 512 }, 'ERR_GGUF_OVERLAP'],
  ['tensor name of 64 bytes', { tensors: [ok2({ name: 'x'.repeat(64) })], data: 256 }, 'ERR_GGUF_BAD_TENSOR_NAME'],
  ['not enough data', { tensors: [ok2()], data: 100 }, 'ERR_GGUF_BAD_OFFSET'],
  ['no data section at all', { tensors: [ok2()] }, 'ERR_GGUF_TRUNCATED'],
  ['data misaligned by a custom alignment', { kv: [kvU32('general.alignment', 64)], tensors: [ok2({ offset: 32 })], data: 512 }, 'ERR_GGUF_BAD_OFFSET'],
  ['tensors and data (valid)', { tensors: [ok2(), ok2({ name: 'v', offset: 256 })], data: 512 }, null],
  ['custom alignment (valid)', { kv: [kvU32('general.alignment', 64)], tensors: [ok2(), ok2({ name: 'v', offset: 256 })], data: 512, align: 64 }, null],
];

describe('hand-made hostile GGUF files (llama.cpp test-gguf categories)', () => {
  for (const [name, spec, code] of cases) {
    it(`${name}: ${code ?? 'accepted'}`, () => {
      const bytes = build(spec);
      if (code === null) {
        const info = inspectGGUF(bytes);
        expect(info.tensors.length).toBe(spec.tensors?.length ?? 0);
        return;
      }
      let err: unknown;
      try {
        inspectGGUF(bytes);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GGUFError);
      expect((err as GGUFError).code).toBe(code);
    });
  }
});

describe('sparrow inspect on hostile files', () => {
  const bin = path.resolve(__dirname, '../../bin/sparrow.mjs');
  const built = fs.existsSync(path.resolve(__dirname, '../../dist/src/cli/main.js'));
  it.runIf(built)('prints one line and exits 1, never a signal; the process stays healthy', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-hostile-'));
    try {
      for (const [name, spec, code] of cases.slice(0, 40)) {
        const file = path.join(dir, 'f.gguf');
        fs.writeFileSync(file, build(spec));
        const r = spawnSync(process.execPath, [bin, 'inspect', file], { encoding: 'utf8', env: process.env });
        expect(r.signal, name).toBeNull();
        if (code === null) {
          expect(r.status, `${name}: ${r.stderr}`).toBe(0);
        } else {
          expect(r.status, name).toBe(1);
          const lines = r.stderr.trim().split('\n');
          expect(lines.length, name).toBe(1);
          expect(lines[0]).toContain(code);
        }
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
