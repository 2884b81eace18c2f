/**
 * `sparrow chat MODEL.gguf`: an interactive chat. Each turn is rendered with the model's
 * chat template (model.createChat keeps the history and reuses the cached turns) and the
 * answer streams to stdout. Ctrl-C stops the answer; at the prompt, Ctrl-C twice (or
 * Ctrl-D, or /exit) quits. With stdin not a terminal, each line is one user message.
 */
import readline from 'node:readline';
import { flagHelp, parseFlags, UsageError } from '../flags.js';
import { contextSize, generateOptions, GENERATE_FLAGS, openModel } from '../generate-flags.js';

export const summary = "chat with a model in the terminal, using the model's chat template";

const FLAGS = {
  ...GENERATE_FLAGS,
  system: { kind: 'string' as const, value: 'TEXT', help: 'system prompt' },
};

export const usage = `usage: sparrow chat MODEL.gguf [options]

An interactive chat: type a message and press Enter; the answer streams as it is generated.
Ctrl-C stops an answer; at the prompt, Ctrl-C twice, Ctrl-D or /exit quits; /clear starts over.

options:
${flagHelp(FLAGS)}`;

const PROMPT = '> ';

export async function run(args: string[]): Promise<number> {
  const { flags, positional } = parseFlags(args, FLAGS);
  if (positional.length !== 1) throw new UsageError(`expected one MODEL.gguf (got ${positional.length} arguments); see sparrow chat --help`);
  generateOptions(flags); // checks the flags before the model loads
  const tty = process.stdin.isTTY === true;

  const model = await openModel(positional[0]!, flags);
  const options = generateOptions(flags, model);
  const systemPrompt = flags.system as string | undefined;
  const newChat = () => model.createChat({ contextSize: contextSize(model, flags), ...(systemPrompt !== undefined ? { systemPrompt } : {}) });
  let chat = newChat();

  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: tty, prompt: PROMPT });
  let answering: AbortController | null = null;
  let exitArmed = false;
  const onInterrupt = () => {
    if (answering) {
      answering.abort();
      return;
    }
    if (exitArmed || !tty) {
      rl.close();
      return;
    }
    exitArmed = true;
    process.stdout.write('\n(Ctrl-C again to quit, or type /exit)\n');
    rl.prompt();
  };
  rl.on('SIGINT', onInterrupt); // a terminal in raw mode: Ctrl-C arrives as a key
  process.on('SIGINT', onInterrupt); // a signal from elsewhere

  if (tty) {
    const name = model.info.name || positional[0];
    process.stderr.write(`chatting with ${name}. Ctrl-C stops an answer; Ctrl-C twice or /exit quits.\n`);
  }
  try {
    if (tty) rl.prompt();
    for await (const line of rl) {
      exitArmed = false;
      const text = line.trim();
      if (text === '/exit' || text === '/quit') break;
      if (text === '/clear') {
        chat.dispose();
        chat = newChat();
        process.stdout.write('(conversation cleared)\n');
      } else if (text !== '') {
        answering = new AbortController();
        const gen = chat.send(text, { ...options, signal: answering.signal });
        let last = '';
        for await (const chunk of gen) {
          if (!chunk.text) continue;
          process.stdout.write(chunk.text);
          last = chunk.text;
        }
        const r = await gen.result;
        answering = null;
        if (!last.endsWith('\n')) process.stdout.write('\n');
        if (r.stopReason === 'abort') process.stdout.write('[stopped]\n');
        else if (r.stopReason === 'contextFull') process.stdout.write('[the context is full: /clear to start over]\n');
      }
      if (tty) rl.prompt();
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    rl.close();
    if (tty) process.stdout.write('\n');
    answering?.abort();
    chat.dispose();
    await model[Symbol.asyncDispose]();
  }
  return 0;
}
