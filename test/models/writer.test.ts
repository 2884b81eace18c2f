// The GGUF writer, read back by the project's GGUF reader (inspectGGUF, the C++ parser).
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gguf, writeGGUF, type TensorSpec } from '../../models/gguf-writer.js';
import { inspectGGUF } from '../../src/gguf.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sparrow-writer-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const bytes = (n: number, seed: number): Uint8Array => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe('writeGGUF', () => {
  it('writes every metadata type and reads back the same values', async () => {
    const file = path.join(dir, 'meta.gguf');
    const metadata = {
      'general.architecture': gguf.str('llama'),
      'test.u8': gguf.u8(250),
      'test.i8': gguf.i8(-120),
      'test.u16': gguf.u16(65000),
      'test.i16': gguf.i16(-32000),
      'test.u32': gguf.u32(4_000_000_000),
      'test.i32': gguf.i32(-2_000_000_000),
      'test.f32': gguf.f32(0.5),
      'test.f64': gguf.f64(Math.PI),
      'test.u64': gguf.u64(2n ** 60n),
      'test.i64': gguf.i64(-12345678901),
      'test.bool': gguf.bool(true),
      'test.string': gguf.str('héllo ▁world 🙂'),
      'test.empty': gguf.str(''),
      'test.strings': gguf.arr('string', ['a', '', '▁b', '<0x0A>']),
      'test.f32s': gguf.arr('f32', [1.5, -2.25, 0]),
      'test.i32s': gguf.arr('i32', [-1, 0, 7]),
      'test.bools': gguf.arr('bool', [true, false]),
      'test.nested': gguf.arr('array', [gguf.arr('u8', [1, 2]), gguf.arr('u8', [3])] as never),
    };
    await writeGGUF(file, { metadata, tensors: [] });
    const info = inspectGGUF(file);
    expect(info.version).toBe(3);
    expect(info.alignment).toBe(32);
    const m = info.metadata;
    expect(m['general.alignment']).toBe(32);
    expect(m['test.u8']).toBe(250);
    expect(m['test.i8']).toBe(-120);
    expect(m['test.u16']).toBe(65000);
    expect(m['test.i16']).toBe(-32000);
    expect(m['test.u32']).toBe(4_000_000_000);
    expect(m['test.i32']).toBe(-2_000_000_000);
    expect(m['test.f32']).toBe(0.5);
    expect(m['test.f64']).toBe(Math.PI);
    expect(m['test.u64']).toBe(2n ** 60n);
    expect(m['test.i64']).toBe(-12345678901);
    expect(m['test.bool']).toBe(true);
    expect(m['test.string']).toBe('héllo ▁world 🙂');
    expect(m['test.empty']).toBe('');
    expect(m['test.strings']).toEqual(['a', '', '▁b', '<0x0A>']);
    expect(m['test.f32s']).toEqual([1.5, -2.25, 0]);
    expect(m['test.i32s']).toEqual([-1, 0, 7]);
    expect(m['test.bools']).toEqual([true, false]);
    expect(m['test.nested']).toEqual([[1, 2], [3]]);
  });

  it('writes tensors at aligned offsets with their types, shapes and bytes', async () => {
    const file = path.join(dir, 'tensors.gguf');
    const q40 = bytes(18 * 4, 1); // 4 blocks: shape [64, 2]
    const q6k = bytes(210 * 2, 2); // 2 super-blocks: shape [256, 2]
    const f32 = new Uint8Array(new Float32Array([1, 2, 3]).buffer); // 12 bytes: forces padding
    const tensors: TensorSpec[] = [
      { name: 'a.f32', type: 'F32', shape: [3], data: f32 },
      { name: 'b.q4_0', type: 'Q4_0', shape: [64, 2], data: q40 },
      // a generator yielding uneven chunks
      { name: 'c.q6_k', type: 'Q6_K', shape: [256, 2], data: function* () { yield q6k.subarray(0, 100); yield q6k.subarray(100); } },
      { name: 'd.bf16', type: 'BF16', shape: [5, 3, 2], data: bytes(60, 3) },
    ];
    const progress: [number, number][] = [];
    const { bytes: size } = await writeGGUF(file, {
      metadata: { 'general.architecture': gguf.str('test') },
      tensors,
      onProgress: (w, t) => progress.push([w, t]),
    });
    const info = inspectGGUF(file);
    expect(fs.statSync(file).size).toBe(size);
    expect(info.fileSize).toBe(size);
    expect(info.dataOffset % 32).toBe(0);
    expect(info.tensors.map((t) => [t.name, t.type, t.shape, t.bytes])).toEqual([
      ['a.f32', 'F32', [3], 12],
      ['b.q4_0', 'Q4_0', [64, 2], 72],
      ['c.q6_k', 'Q6_K', [256, 2], 420],
      ['d.bf16', 'BF16', [5, 3, 2], 60],
    ]);
    const raw = fs.readFileSync(file);
    const expected = [f32, q40, q6k, bytes(60, 3)];
    info.tensors.forEach((t, i) => {
      expect(t.offset % 32).toBe(0);
      expect(Buffer.compare(raw.subarray(t.offset, t.offset + t.bytes), Buffer.from(expected[i]!))).toBe(0);
    });
    // progress is monotonic and ends at the file size
    expect(progress.at(-1)).toEqual([size, size]);
    for (let i = 1; i < progress.length; i++) expect(progress[i]![0]).toBeGreaterThan(progress[i - 1]![0]);
    // no temporary file is left behind
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('gives identical bytes for identical input', async () => {
    const write = async (name: string) => {
      const file = path.join(dir, name);
      await writeGGUF(file, {
        metadata: { 'general.architecture': gguf.str('x'), 'x.list': gguf.arr('string', ['p', 'q']) },
        tensors: [{ name: 't', type: 'Q8_0', shape: [32, 3], data: bytes(34 * 3, 9) }],
      });
      return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
    };
    expect(await write('same1.gguf')).toBe(await write('same2.gguf'));
  });

  it('rejects bad input and leaves no file behind', async () => {
    const file = path.join(dir, 'bad.gguf');
    const md = { 'general.architecture': gguf.str('x') };
    // wrong byte count for the shape
    await expect(
      writeGGUF(file, { metadata: md, tensors: [{ name: 'w', type: 'Q4_0', shape: [32, 2], data: bytes(18, 0) }] }),
    ).rejects.toThrow(/w/);
    // a generator that yields too little
    await expect(
      writeGGUF(file, { metadata: md, tensors: [{ name: 'g', type: 'F32', shape: [8], data: function* () { yield bytes(16, 0); } }] }),
    ).rejects.toThrow(/g/);
    // a row length the block size does not divide
    await expect(
      writeGGUF(file, { metadata: md, tensors: [{ name: 'k', type: 'Q4_K', shape: [128, 2], data: bytes(144, 0) }] }),
    ).rejects.toThrow(/256/);
    // out-of-range integer, untyped number
    await expect(writeGGUF(file, { metadata: { 'a.b': gguf.u8(300) }, tensors: [] })).rejects.toThrow(/a\.b/);
    await expect(writeGGUF(file, { metadata: { 'a.n': 5 as never }, tensors: [] })).rejects.toThrow(/a\.n/);
    // duplicate tensor names
    await expect(
      writeGGUF(file, {
        metadata: md,
        tensors: [
          { name: 'dup', type: 'F32', shape: [1], data: bytes(4, 0) },
          { name: 'dup', type: 'F32', shape: [1], data: bytes(4, 0) },
        ],
      }),
    ).rejects.toThrow(/dup/);
    expect(fs.existsSync(file)).toBe(false);
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
