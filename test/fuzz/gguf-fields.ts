/**
 * An independent walk over a GGUF header (written for the tests, sharing no code with
 * the C++ reader) that records where each structural field sits, so the fuzzer can
 * truncate at every boundary and corrupt counts, lengths, types and offsets precisely.
 */
export type FieldKind = 'magic' | 'version' | 'count' | 'length' | 'type' | 'ndims' | 'dim' | 'offset' | 'bytes';

export interface Field {
  at: number;
  size: number;
  kind: FieldKind;
}

const SCALAR_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

/** Records fields; arrays longer than `maxElems` record only their first elements. */
export function ggufFields(buf: Uint8Array, maxElems = 16): { fields: Field[]; dataStart: number; tensorRanges: [number, number][] } {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const fields: Field[] = [];
  let p = 0;
  const rec = (kind: FieldKind, size: number) => {
    fields.push({ at: p, size, kind });
    p += size;
  };
  const u32 = () => dv.getUint32(p, true);
  const u64 = () => Number(dv.getBigUint64(p, true));

  rec('magic', 4);
  rec('version', 4);
  const nTensors = u64();
  rec('count', 8);
  const nKv = u64();
  rec('count', 8);

  const value = (type: number, depth: number): void => {
    if (type in SCALAR_SIZE) return rec('bytes', SCALAR_SIZE[type]);
    if (type === 8) {
      const len = u64();
      rec('length', 8);
      if (len) rec('bytes', len);
      return;
    }
    const et = u32();
    rec('type', 4);
    const n = u64();
    rec('count', 8);
    for (let i = 0; i < n; i++) {
      if (i >= maxElems && et in SCALAR_SIZE) {
        p += (n - i) * SCALAR_SIZE[et];
        return;
      }
      if (i >= maxElems) {
        // skip the rest without recording
        const start = fields.length;
        value(et, depth + 1);
        fields.length = start;
      } else value(et, depth + 1);
    }
  };

  let alignment = 32;
  for (let i = 0; i < nKv; i++) {
    const klen = u64();
    rec('length', 8);
    const key = new TextDecoder().decode(buf.subarray(p, p + klen));
    rec('bytes', klen);
    const type = u32();
    rec('type', 4);
    if (key === 'general.alignment') alignment = dv.getUint32(p, true);
    value(type, 0);
  }
  const offsets: { off: number; rowBytes: number }[] = [];
  for (let i = 0; i < nTensors; i++) {
    const nlen = u64();
    rec('length', 8);
    rec('bytes', nlen);
    const nd = u32();
    rec('ndims', 4);
    for (let d = 0; d < nd; d++) rec('dim', 8);
    rec('type', 4);
    offsets.push({ off: u64(), rowBytes: 0 });
    rec('offset', 8);
  }
  const dataStart = Math.ceil(p / alignment) * alignment;
  const sorted = offsets.map((o) => dataStart + o.off).sort((a, b) => a - b);
  const tensorRanges: [number, number][] = sorted.map((s, i) => [s, i + 1 < sorted.length ? sorted[i + 1] : buf.length]);
  return { fields, dataStart, tensorRanges };
}
