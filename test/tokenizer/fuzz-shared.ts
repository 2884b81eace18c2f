/**
 * The differential fuzz run shared by the fuzz test files: random strings through this
 * tokenizer and through llama.cpp (node-llama-cpp) on the same vocabulary file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LlamaModel } from 'node-llama-cpp';
import { Tokenizer, loadTokenizer, cleanUpSpaces } from '../../src/tokenizer/index.js';
import { BYTE_TO_UNICODE } from '../../src/tokenizer/unicode.js';
import { fuzzIterations, fuzzSeed, loadOracle, type VocabCase } from './vocabs.js';
import { makeRng, randomText } from './fuzz-strings.js';

const enc = new TextEncoder();
// ignoreBOM: a leading U+FEFF is text here (a plain TextDecoder would drop it).
const dec = new TextDecoder('utf-8', { ignoreBOM: true });

/** What detokenize(tokenize(s)) must give back: s, up to llama.cpp's documented changes. */
function roundTripExpectation(tok: Tokenizer, s: string): string | undefined {
  const wf = dec.decode(enc.encode(s)); // lone surrogates -> U+FFFD
  if (tok.kind === 'wpm') return undefined; // BERT lower-cases, strips accents and spaces
  if (tok.kind === 'spm') return wf.replaceAll('\u2581', ' '); // '▁' is how SPM writes a space
  // Bytes the vocabulary has no token for are dropped (Falcon lacks a few).
  let bytes: Uint8Array = enc.encode(wf).filter((b) => tok.tokenId(BYTE_TO_UNICODE[b]!) !== undefined);
  // Some BPE pre-tokenizers ask llama.cpp to drop spaces before punctuation on detokenize.
  if (tok.cleanSpaces) bytes = cleanUpSpaces(bytes);
  return dec.decode(bytes);
}

function preview(s: string): string {
  return JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s);
}

export function fuzzVocabulary(vc: VocabCase, defaultIterations: number): void {
  describe(`differential fuzz: ${vc.name}`, () => {
    let ours: Tokenizer;
    let oracle: LlamaModel;
    const seed = fuzzSeed();
    const iterations = fuzzIterations(defaultIterations);

    beforeAll(async () => {
      ours = loadTokenizer(vc.file());
      oracle = await loadOracle(vc.file());
    });
    afterAll(async () => {
      await oracle?.dispose();
    });

    it(`tokenize, detokenize, round trip and streaming match llama.cpp (${iterations} strings)`, () => {
      console.log(`[${vc.name}] seed ${seed} (replay: SPARROW_FUZZ_SEED=${seed}), ${iterations} strings`);
      const rng = makeRng(seed);
      const failures: string[] = [];
      const fail = (i: number, what: string, s: string, detail: string) => {
        if (failures.length < 5) failures.push(`#${i} ${what} for ${preview(s)}: ${detail}`);
      };
      for (let i = 0; i < iterations && failures.length < 5; i++) {
        const s = randomText(rng);
        const parseSpecial = i % 4 === 3;
        const want = Array.from(oracle.tokenize(s, parseSpecial));
        const got = ours.tokenize(s, { addSpecial: false, parseSpecial });
        if (want.join(' ') !== got.join(' ')) {
          fail(i, `tokenize(parseSpecial=${parseSpecial})`, s, `llama.cpp [${want.join(' ')}] vs ours [${got.join(' ')}]`);
          continue;
        }
        for (const special of [false, true]) {
          const w = oracle.detokenize(want, special);
          const g = ours.detokenize(got, { removeSpecial: false, unparseSpecial: special });
          if (w !== g) fail(i, `detokenize(special=${special})`, s, `llama.cpp ${preview(w)} vs ours ${preview(g)}`);
        }
        const full = ours.detokenize(got);
        if (!parseSpecial) {
          const expected = roundTripExpectation(ours, s);
          if (expected !== undefined && full !== expected) fail(i, 'round trip', s, `got ${preview(full)}`);
        }
        // Streaming: the pieces never hold a split character, and add up to detokenize.
        const decoder = ours.createDecoder();
        let streamed = '';
        for (let k = 0; k < got.length; k++) {
          const piece = decoder.push(got[k]!);
          if (piece.includes('\uFFFD') && !full.includes('\uFFFD')) fail(i, 'decoder', s, `U+FFFD after token ${k}`);
          streamed += piece;
          if (got.length <= 64 && !ours.detokenize(got.slice(0, k + 1)).startsWith(streamed)) {
            fail(i, 'decoder', s, `output after ${k + 1} tokens is not a prefix of detokenize`);
          }
        }
        streamed += decoder.flush();
        if (streamed !== full) fail(i, 'decoder', s, `streamed ${preview(streamed)} vs detokenize ${preview(full)}`);
        if (i % 16 === 0 && got.length <= 64) {
          // Every prefix: a decoder fed the first k ids and flushed gives detokenize of them.
          for (let k = 0; k <= got.length; k++) {
            const d = ours.createDecoder();
            let t = '';
            for (let j = 0; j < k; j++) t += d.push(got[j]!);
            t += d.flush();
            const want2 = ours.detokenize(got.slice(0, k));
            if (t !== want2) {
              fail(i, 'decoder prefix', s, `k=${k}: ${preview(t)} vs ${preview(want2)}`);
              break;
            }
          }
        }
      }
      expect(failures, `seed ${seed}`).toEqual([]);
    });
  });
}
