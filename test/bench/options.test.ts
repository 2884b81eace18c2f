import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MODELS, QUICK_MODELS, parseBenchArgs, parseModelList, physicalCores, type BenchOptions } from '../../bench/options.js';

const parse = (...argv: string[]) => parseBenchArgs(argv) as BenchOptions;

describe('bench options', () => {
  it('defaults: the 1B-class model in two mixes, both engines, pp512/tg128, 3 rounds, every CPU', () => {
    const o = parse();
    expect(o.models).toEqual(parseModelList(DEFAULT_MODELS));
    expect(o.models.map((m) => (m.kind === 'synthetic' ? m.mix : ''))).toEqual(['q4_0', 'q4_k_m']);
    expect(o.engines).toEqual(['sparrow', 'llama.cpp']);
    expect([o.pp, o.tg, o.rounds, o.threads]).toEqual([512, 128, 3, physicalCores()]);
    expect(physicalCores()).toBeGreaterThanOrEqual(1);
    expect(physicalCores()).toBeLessThanOrEqual(os.availableParallelism());
    expect([o.json, o.quick, o.kernels, o.html]).toEqual([false, false, false, undefined]);
  });

  it('--quick: a small model, short runs, one round; explicit options still win', () => {
    const o = parse('--quick', '--json');
    expect(o.models).toEqual(parseModelList(QUICK_MODELS));
    expect([o.pp, o.tg, o.rounds, o.json]).toEqual([64, 16, 1, true]);
    expect(parse('--quick', '--pp', '32', '--rounds=2')).toMatchObject({ pp: 32, rounds: 2 });
  });

  it('--model, --models, --threads, --engines, --html', () => {
    expect(parse('--model', 'x/My.GGUF').models).toEqual([{ kind: 'file', path: 'x/My.GGUF' }]);
    expect(parse('--models', 'TinyLlama-1.1B:Q8_0, smollm-135m').models).toEqual([
      { kind: 'synthetic', name: 'tinyllama-1.1b', mix: 'q8_0' },
      { kind: 'synthetic', name: 'smollm-135m', mix: 'q4_0' },
    ]);
    expect(parse('--threads', '3').threads).toBe(3);
    expect(parse('--engines', 'llama').engines).toEqual(['llama.cpp']);
    expect(parse('--engines', 'sparrow,llama.cpp,sparrow').engines).toEqual(['sparrow', 'llama.cpp']);
    expect(parse('--html', 'r.html').html).toBe('r.html');
    expect(parseBenchArgs(['--help'])).toBe('help');
  });

  it('every bad option is an error that names it', () => {
    const bad: [string[], RegExp][] = [
      [['--frobnicate'], /unknown option --frobnicate/],
      [['--threads', '0'], /--threads must be an integer/],
      [['--threads', '1.5'], /--threads must be an integer/],
      [['--threads'], /--threads needs a value/],
      [['--threads', 'many'], /--threads must be a number/],
      [['--pp', '-1'], /--pp must be an integer/],
      [['--rounds', '1000'], /--rounds must be an integer from 1 to 100/],
      [['--model', 'x.bin'], /--model must name a \.gguf file/],
      [['--model', 'a.gguf', '--models', 'x'], /--model and --models cannot be used together/],
      [['--models', 'a:b:c'], /--models: 'a:b:c' is not NAME or NAME:MIX/],
      [['--models', ','], /--models needs at least one/],
      [['--engines', 'vllm'], /--engines: unknown engine 'vllm'/],
      [['--json=yes'], /--json takes no value/],
      [['--html', ''], /--html needs a file name/],
      [['extra'], /unexpected argument 'extra'/],
    ];
    for (const [argv, re] of bad) expect(() => parseBenchArgs(argv), argv.join(' ')).toThrow(re);
  });
});
