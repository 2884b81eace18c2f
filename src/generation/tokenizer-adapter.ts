/**
 * The project's Tokenizer as generation uses it. The one difference: the decoder of a
 * generation continues a text, so it must not drop the leading space of the first
 * generated token (SentencePiece decoders drop it at the start of a text). Pushing a
 * control token first (BOS, else EOS), which decodes to nothing with removeSpecial,
 * marks the start as already past.
 */
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import type { TokenizerLike } from './types.js';

export function generationTokenizer(t: Tokenizer): TokenizerLike {
  return {
    tokenize: (text, options) => t.tokenize(text, options),
    isEog: (id) => t.isEog(id),
    piece: (id, special) => t.piece(id, special),
    vocabKey: t,
    createDecoder: () => {
      const d = t.createDecoder({ removeSpecial: true });
      const primer = t.special.bos ?? t.special.eos;
      if (primer !== null) d.push(primer);
      return d;
    },
  };
}
