/**
 * An open-addressing hash table from a pair of non-negative int32 symbol ids to two int32
 * values (for BPE: merge rank and merged symbol; for SPM: merged token). Faster and leaner
 * than a Map keyed by strings or by doubles.
 */
export class PairTable {
  private keysA: Int32Array;
  private keysB: Int32Array;
  private vals0: Int32Array;
  private vals1: Int32Array;
  private mask: number;
  size = 0;

  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap <<= 1;
    this.mask = cap - 1;
    this.keysA = new Int32Array(cap).fill(-1);
    this.keysB = new Int32Array(cap);
    this.vals0 = new Int32Array(cap);
    this.vals1 = new Int32Array(cap);
  }

  private static hash(a: number, b: number): number {
    return Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77);
  }

  /** Inserts (a, b) -> (v0, v1) unless the pair is present already (first insert wins). */
  insertIfAbsent(a: number, b: number, v0: number, v1: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    let i = PairTable.hash(a, b) & this.mask;
    for (;;) {
      const ka = this.keysA[i]!;
      if (ka === -1) break;
      if (ka === a && this.keysB[i] === b) return;
      i = (i + 1) & this.mask;
    }
    this.keysA[i] = a;
    this.keysB[i] = b;
    this.vals0[i] = v0;
    this.vals1[i] = v1;
    this.size++;
  }

  /** Slot of (a, b), or -1. Read the values with value0 / value1. */
  find(a: number, b: number): number {
    let i = PairTable.hash(a, b) & this.mask;
    for (;;) {
      const ka = this.keysA[i]!;
      if (ka === -1) return -1;
      if (ka === a && this.keysB[i] === b) return i;
      i = (i + 1) & this.mask;
    }
  }

  value0(slot: number): number {
    return this.vals0[slot]!;
  }

  value1(slot: number): number {
    return this.vals1[slot]!;
  }

  private grow(): void {
    const { keysA, keysB, vals0, vals1 } = this;
    const cap = (this.mask + 1) * 2;
    this.mask = cap - 1;
    this.keysA = new Int32Array(cap).fill(-1);
    this.keysB = new Int32Array(cap);
    this.vals0 = new Int32Array(cap);
    this.vals1 = new Int32Array(cap);
    this.size = 0;
    for (let i = 0; i < keysA.length; i++) {
      if (keysA[i] !== -1) this.insertIfAbsent(keysA[i]!, keysB[i]!, vals0[i]!, vals1[i]!);
    }
  }
}

/**
 * A binary min-heap of merge candidates ordered by (priority, left) ascending, stored in
 * parallel typed arrays. Each entry carries the two symbol positions it joins and the ids
 * those symbols had when it was pushed, so that stale entries can be recognised.
 */
export class MergeHeap {
  prio: Float64Array;
  left: Int32Array;
  right: Int32Array;
  leftId: Int32Array;
  rightId: Int32Array;
  length = 0;

  constructor(capacity = 64) {
    this.prio = new Float64Array(capacity);
    this.left = new Int32Array(capacity);
    this.right = new Int32Array(capacity);
    this.leftId = new Int32Array(capacity);
    this.rightId = new Int32Array(capacity);
  }

  clear(): void {
    this.length = 0;
  }

  private less(i: number, j: number): boolean {
    const pi = this.prio[i]!;
    const pj = this.prio[j]!;
    return pi < pj || (pi === pj && this.left[i]! < this.left[j]!);
  }

  private swap(i: number, j: number): void {
    let t = this.prio[i]!;
    this.prio[i] = this.prio[j]!;
    this.prio[j] = t;
    t = this.left[i]!;
    this.left[i] = this.left[j]!;
    this.left[j] = t;
    t = this.right[i]!;
    this.right[i] = this.right[j]!;
    this.right[j] = t;
    t = this.leftId[i]!;
    this.leftId[i] = this.leftId[j]!;
    this.leftId[j] = t;
    t = this.rightId[i]!;
    this.rightId[i] = this.rightId[j]!;
    this.rightId[j] = t;
  }

  push(prio: number, left: number, right: number, leftId: number, rightId: number): void {
    if (this.length === this.prio.length) this.growTo(this.length * 2);
    let i = this.length++;
    this.prio[i] = prio;
    this.left[i] = left;
    this.right[i] = right;
    this.leftId[i] = leftId;
    this.rightId[i] = rightId;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the top entry; read it first at index 0. */
  pop(): void {
    const last = --this.length;
    if (last === 0) return;
    this.swap(0, last);
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= last) break;
      const r = l + 1;
      const m = r < last && this.less(r, l) ? r : l;
      if (!this.less(m, i)) break;
      this.swap(i, m);
      i = m;
    }
  }

  private growTo(cap: number): void {
    const grow = <T extends Float64Array | Int32Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(cap);
      b.set(a);
      return b;
    };
    this.prio = grow(this.prio);
    this.left = grow(this.left);
    this.right = grow(this.right);
    this.leftId = grow(this.leftId);
    this.rightId = grow(this.rightId);
  }
}
