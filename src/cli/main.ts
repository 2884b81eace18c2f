/**
 * `sparrow` command line. Each command lives in src/cli/commands/<name>.ts and exports
 * `run(args): Promise<number>` (the exit code) plus a one-line `summary` and its `usage`.
 * Every command takes --help and --version. Errors are one line on stderr: exit code 2 for
 * a bad command line (unknown command or flag, bad value), 1 for anything else (missing or
 * bad file, failed download).
 */
import { SparrowError } from '../errors.js';
import * as calibrate from './commands/calibrate.js';
import * as chat from './commands/chat.js';
import * as complete from './commands/complete.js';
import * as info from './commands/info.js';
import * as inspect from './commands/inspect.js';
import * as perplexity from './commands/perplexity.js';
import * as serve from './commands/serve.js';
import * as pull from './commands/pull.js';
import { UsageError } from './flags.js';
import { packageVersion } from './version.js';

interface Command {
  summary: string;
  usage: string;
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = { complete, chat, pull, serve, perplexity, calibrate, inspect, info };

function help(): string {
  const lines = ['usage: sparrow <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(10)} ${c.summary}`);
  lines.push('', 'Run `sparrow <command> --help` for its options; `sparrow --version` prints the version.');
  return lines.join('\n');
}

/** --help / --version before the first `--`. */
function asked(args: string[], ...flags: string[]): boolean {
  const end = args.indexOf('--');
  return (end < 0 ? args : args.slice(0, end)).some((a) => flags.includes(a));
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name) {
    console.error(help());
    return 2;
  }
  if (name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return 0;
  }
  if (name === '--version' || name === '-V') {
    console.log(packageVersion());
    return 0;
  }
  const cmd = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!cmd) {
    console.error(`sparrow: unknown command '${name}' (commands: ${Object.keys(commands).join(', ')}; see sparrow --help)`);
    return 2;
  }
  if (asked(rest, '--help', '-h')) {
    console.log(cmd.usage);
    return 0;
  }
  if (asked(rest, '--version', '-V')) {
    console.log(packageVersion());
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (err) {
    // Expected failures (bad file, bad option) get one line; anything else a stack.
    if (err instanceof UsageError) {
      console.error(`sparrow ${name}: ${err.message}`);
      return 2;
    }
    if (err instanceof SparrowError) {
      console.error(`sparrow ${name}: ${err.message.split('\n')[0]} [${err.code}]`);
      return 1;
    }
    console.error(`sparrow ${name}: ${(err as Error)?.stack ?? String(err)}`);
    return 1;
  }
}
