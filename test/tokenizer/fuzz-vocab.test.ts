/** Differential fuzzing against llama.cpp on the shared vocabularies and stories260K. */
import { fuzzVocabulary } from './fuzz-shared.js';
import { VOCABS } from './vocabs.js';

for (const vc of VOCABS) fuzzVocabulary(vc, 4000);
