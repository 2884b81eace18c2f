/** Differential fuzzing against llama.cpp for the pre-tokenizers no shared vocabulary uses. */
import { fuzzVocabulary } from './fuzz-shared.js';
import { PATCHED_VOCABS } from './vocabs.js';

for (const vc of PATCHED_VOCABS) fuzzVocabulary(vc, 2500);
