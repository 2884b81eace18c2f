/**
 * Ordering helpers for the sampler over large vocabularies (152k entries for Qwen):
 * a partial selection of the k best entries (a size-k min-heap, O(n log k)) and a full
 * descending sort that runs in V8's native typed-array sort instead of a JS comparator.
 *
 * Order everywhere: larger key first; equal keys by smaller index first (what a stable
 * sort of the indices by descending key gives). NaN keys count as -Infinity.
 */

/** Writes the indices of the `k` largest `keys[i]` (i < n) into `outIdx[0..k)`, best first. */
export function selectTopK(keys: Float32Array, n: number, k: number, outIdx: Int32Array, heapKey: Float32Array): void {
  if (k >= n) {
    sortAllDesc(keys, n, outIdx, scratchKeys(n));
    return;
  }
  // Min-heap of the best k seen so far: heap[0] is the worst of them. A candidate enters
  // when it beats the worst; most of a large vocabulary is rejected by one comparison.
  let size = 0;
  for (let i = 0; i < n; i++) {
    let v = keys[i];
    if (v !== v) v = -Infinity;
    if (size < k) {
      // sift up
      let pos = size++;
      while (pos > 0) {
        const parent = (pos - 1) >> 1;
        if (!worse(v, i, heapKey[parent], outIdx[parent])) break;
        heapKey[pos] = heapKey[parent];
        outIdx[pos] = outIdx[parent];
        pos = parent;
      }
      heapKey[pos] = v;
      outIdx[pos] = i;
    } else if (worse(heapKey[0], outIdx[0], v, i)) {
      siftDown(heapKey, outIdx, size, v, i);
    }
  }
  // Pop the heap from the worst down: the best ends at index 0.
  for (let end = size - 1; end > 0; end--) {
    const v = heapKey[end];
    const id = outIdx[end];
    const topV = heapKey[0];
    const topI = outIdx[0];
    siftDown(heapKey, outIdx, end, v, id);
    heapKey[end] = topV;
    outIdx[end] = topI;
  }
}

/** Is (va, ia) worse than (vb, ib)? Lower key, or equal key with a larger index. */
function worse(va: number, ia: number, vb: number, ib: number): boolean {
  return va < vb || (va === vb && ia > ib);
}

/** Replaces the heap root by (v, id) and restores the min-heap over [0, size). */
function siftDown(heapKey: Float32Array, heapIdx: Int32Array, size: number, v: number, id: number): void {
  let pos = 0;
  for (;;) {
    const l = 2 * pos + 1;
    if (l >= size) break;
    const r = l + 1;
    let c = l;
    if (r < size && worse(heapKey[r], heapIdx[r], heapKey[l], heapIdx[l])) c = r;
    if (!worse(heapKey[c], heapIdx[c], v, id)) break;
    heapKey[pos] = heapKey[c];
    heapIdx[pos] = heapIdx[c];
    pos = c;
  }
  heapKey[pos] = v;
  heapIdx[pos] = id;
}

// Full sort: each entry becomes one float64 `rank * 2^20 + index`, where `rank` is the
// key's float32 bit pattern mapped to an unsigned integer that grows as the key shrinks.
// Both parts fit in 52 bits, so the float64 is exact and a native ascending numeric sort
// orders by descending key, then ascending index. Vocabularies up to 2^20 entries.
const INDEX_SPAN = 1048576;
const bitsF32 = new Float32Array(1);
const bitsU32 = new Uint32Array(bitsF32.buffer);
let packed = new Float64Array(0);

function scratchKeys(n: number): Float64Array {
  if (packed.length < n) packed = new Float64Array(n);
  return packed;
}

function descRank(v: number): number {
  if (v !== v) v = -Infinity;
  bitsF32[0] = v;
  const b = bitsU32[0];
  // Ascending order of floats <-> ascending order of `asc`; rank is its complement.
  const asc = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
  return 0xffffffff - asc;
}

/** Sorts indices [0, n) by descending keys[i] into outIdx[0..n). */
export function sortAllDesc(keys: Float32Array, n: number, outIdx: Int32Array, tmp: Float64Array = scratchKeys(n)): void {
  if (n > INDEX_SPAN) throw new RangeError(`vocabularies above ${INDEX_SPAN} entries are not supported`);
  const buf = tmp.subarray(0, n);
  for (let i = 0; i < n; i++) buf[i] = descRank(keys[i]) * INDEX_SPAN + i;
  buf.sort();
  for (let i = 0; i < n; i++) outIdx[i] = buf[i] % INDEX_SPAN;
}

/**
 * Sorts the m entries idx[0..m) (indices into `keys`) by descending key, in place.
 * Used for candidate subsets that are not in order yet.
 */
export function sortSubsetDesc(keys: Float32Array, idx: Int32Array, m: number): void {
  const buf = scratchKeys(m).subarray(0, m);
  for (let j = 0; j < m; j++) {
    const i = idx[j];
    buf[j] = descRank(keys[i]) * INDEX_SPAN + i;
  }
  buf.sort();
  for (let j = 0; j < m; j++) idx[j] = buf[j] % INDEX_SPAN;
}
