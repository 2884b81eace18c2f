/** `sparrow complete MODEL.gguf "prompt"`: continues the prompt, streaming to stdout. */
import { flagHelp, parseFlags, UsageError } from '../flags.js';
import { contextSize, generateOptions, GENERATE_FLAGS, openModel } from '../generate-flags.js';

export const summary = 'continue a prompt with a model, streaming the text to stdout';

const FLAGS = {
  ...GENERATE_FLAGS,
  stats: { kind: 'boolean' as const, help: 'print the stop reason, token counts and speed to stderr' },
};

export const usage = `usage: sparrow complete MODEL.gguf PROMPT [options]

Continues PROMPT (no chat template) and writes the new text to stdout as it is generated.
A prompt of '-' is read from stdin. Ctrl-C stops the generation.

options:
${flagHelp(FLAGS)}`;

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

export async function run(args: string[]): Promise<number> {
  const { flags, positional } = parseFlags(args, FLAGS);
  if (positional.length !== 2) throw new UsageError(`expected MODEL.gguf and PROMPT (got ${positional.length} argument${positional.length === 1 ? '' : 's'}); see sparrow complete --help`);
  const [file, promptArg] = positional as [string, string];
  const prompt = promptArg === '-' ? await readStdin() : promptArg;
  if (prompt === '') throw new UsageError('the prompt is empty');
  generateOptions(flags); // checks the flags before the model loads

  const model = await openModel(file, flags);
  const options = generateOptions(flags, model);
  const controller = new AbortController();
  const onSigint = () => controller.abort();
  process.on('SIGINT', onSigint);
  // A closed pipe (`| head`) ends the generation instead of crashing.
  let pipeClosed = false;
  const onPipeError = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    pipeClosed = true;
    controller.abort();
  };
  process.stdout.on('error', onPipeError);
  try {
    const session = model.createSession({ contextSize: contextSize(model, flags) });
    const gen = session.generate(prompt, { ...options, signal: controller.signal });
    let last = '';
    for await (const chunk of gen) {
      if (chunk.text && !controller.signal.aborted) {
        process.stdout.write(chunk.text);
        last = chunk.text;
      }
    }
    const r = await gen.result;
    if (process.stdout.isTTY && !last.endsWith('\n')) process.stdout.write('\n');
    if (flags.stats) {
      const t = r.timings;
      const tps = t.generationMs > 0 ? (t.generatedTokens * 1000) / t.generationMs : 0;
      process.stderr.write(`[${r.stopReason}] prompt ${t.promptTokens} tokens, generated ${t.generatedTokens} tokens, ${tps.toFixed(1)} tokens/s\n`);
    }
    if (pipeClosed) return 0; // the reader has all it wanted
    if (r.stopReason === 'abort') {
      if (!process.stdout.writableEnded) await new Promise<void>((res) => process.stdout.write('', () => res()));
      return 130;
    }
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
    process.stdout.off('error', onPipeError);
    await model[Symbol.asyncDispose]();
  }
}
