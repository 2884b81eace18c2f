/**
 * `sparrow` command line. Each command lives in src/cli/commands/<name>.ts and exports
 * `run(args): Promise<number>` (the exit code) plus a one-line `summary`.
 */
import { SparrowError } from '../errors.js';
import * as inspect from './commands/inspect.js';
import * as info from './commands/info.js';
import * as perplexity from './commands/perplexity.js';
import * as serve from './commands/serve.js';

interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = { inspect, info, perplexity, serve };

function help(): string {
  const lines = ['usage: sparrow <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Run `sparrow <command> --help` for its options.');
  return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name ? 0 : 1;
  }
  const cmd = commands[name];
  if (!cmd) {
    console.error(`sparrow: unknown command '${name}'\n\n${help()}`);
    return 1;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    // Expected failures (bad file, bad option) get one line; anything else a stack.
    if (err instanceof SparrowError) console.error(`sparrow ${name}: ${err.message} [${err.code}]`);
    else console.error(`sparrow ${name}: ${(err as Error)?.stack ?? String(err)}`);
    return 1;
  }
}
