/**
 * Tool-use templates with tools, against Jinja2 (python3 with jinja2, set up as Hugging Face
 * transformers sets it up: see render_jinja2.py). The Hermes-style tool_use template (macros
 * that turn each tool's JSON schema into a Python-like signature and docstring) used to
 * throw `Cannot apply filter "trim" to type: UndefinedValue` in @huggingface/jinja for a
 * parameter without a description; src/templates/jinja-compat.ts fixes it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { describe, expect, it } from 'vitest';
import { applyChatTemplate, type ChatMessage, type ChatTool } from '../../src/templates/index.js';
import { patchUndefinedFilters } from '../../src/templates/jinja-compat.js';

const SHARED = path.resolve(import.meta.dirname, '../../../shared/templates');
const RENDERER = path.join(import.meta.dirname, 'render_jinja2.py');
const HERMES = fs.readFileSync(path.join(import.meta.dirname, 'fixtures/hermes-tool-use.jinja'), 'utf8');

const python = ['/usr/bin/python3', 'python3'].find((exe) => {
  try {
    execFileSync(exe, ['-c', 'import jinja2'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});

const fn = (name: string, description: string, parameters: Record<string, unknown>): ChatTool => ({
  type: 'function',
  function: { name, description, parameters },
});

const TOOL_SETS: Record<string, ChatTool[]> = {
  // One tool whose parameter has no description: the case that threw.
  'one tool, no parameter description': [
    fn('get_weather', 'Current weather in a city', { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
  ],
  'one tool, described parameters': [
    fn('get_weather', 'Current weather in a city', {
      type: 'object',
      properties: { city: { type: 'string', description: '  City name ' }, unit: { type: 'string', enum: ['c', 'f'], description: 'Unit' } },
      required: ['city'],
    }),
  ],
  'several tools, nested types': [
    fn('search', 'Search the web', {
      type: 'object',
      properties: {
        query: { type: 'string', description: 'What to look for' },
        limit: { type: 'integer' },
        tags: { type: 'array', items: { type: 'string' } },
        filters: { type: 'object', additionalProperties: { type: 'number' } },
        mode: { type: ['string', 'integer'] },
        extra: {},
      },
      required: ['query'],
    }),
    fn('no_args', 'Takes nothing', { type: 'object', properties: {} }),
    fn('ünïcode_tool', 'Grüße "quoted" \\ back', { type: 'object', properties: { flag: { type: 'boolean', description: 'on/off' } } }),
  ],
};

const CONVERSATIONS: Record<string, ChatMessage[]> = {
  question: [
    { role: 'system', content: 'You are helpful.' },
    { role: 'user', content: 'Weather in Paris?' },
  ],
  'call and result': [
    { role: 'user', content: 'Weather in Paris?' },
    {
      role: 'assistant',
      content: '',
      tool_calls: [{ type: 'function', id: 'call12345', function: { name: 'get_weather', arguments: { city: 'Paris' } } }],
    },
    { role: 'tool', content: '{"temperature": 21}', tool_call_id: 'call12345', name: 'get_weather' },
  ],
};

const TEMPLATES: Record<string, string> = {
  'hermes tool_use (fixture)': HERMES,
  ...Object.fromEntries(
    ['Qwen-Qwen2.5-7B-Instruct.jinja', 'meta-llama-Llama-3.1-8B-Instruct.jinja', 'mistralai-Mistral-Nemo-Instruct-2407.jinja']
      .filter((f) => fs.existsSync(path.join(SHARED, f)))
      .map((f) => [f, fs.readFileSync(path.join(SHARED, f), 'utf8')]),
  ),
};

interface Job {
  label: string;
  template: string;
  messages: ChatMessage[];
  tools: ChatTool[];
}

const jobs: Job[] = [];
for (const [tname, template] of Object.entries(TEMPLATES))
  for (const [sname, tools] of Object.entries(TOOL_SETS))
    for (const [cname, messages] of Object.entries(CONVERSATIONS)) jobs.push({ label: `${tname} / ${sname} / ${cname}`, template, messages, tools });

const context = (j: Job) => ({ messages: j.messages, tools: j.tools, add_generation_prompt: true, bos_token: '<s>', eos_token: '</s>' });

describe('the jinja2 compatibility layer', () => {
  it('reproduces the failure without it, and renders with it', () => {
    const raw = new Template(HERMES);
    const ctx = context(jobs[0]!);
    expect(() => raw.render(ctx)).toThrow(/Cannot apply filter "trim" to type: UndefinedValue/);
    const fixed = new Template(HERMES);
    expect(patchUndefinedFilters(fixed.parsed)).toBeGreaterThan(0);
    expect(fixed.render(ctx)).toContain('city(str): ');
  });

  it('leaves defined values, none and false alone', () => {
    const r = (src: string, vars: Record<string, unknown>) => applyChatTemplate(src, [], { variables: vars });
    expect(r('[{{ x|trim }}][{{ y|length }}][{{ z|items|list|length }}]', {})).toBe('[][0][0]');
    expect(r('[{{ x|trim }}][{{ y|length }}][{{ z|items|list|length }}]', { x: ' a ', y: [1, 2], z: { a: 1 } })).toBe('[a][2][1]');
    expect(r('{{ (x|default("d")) }}', { x: false })).toBe('false');
  });
});

describe.skipIf(!python)('tool-use templates with tools against Jinja2', () => {
  const reference: Array<{ ok?: string; error?: string }> = python
    ? JSON.parse(
        execFileSync(python, [RENDERER], {
          input: JSON.stringify(jobs.map((j) => ({ template: j.template, context: context(j) }))),
          maxBuffer: 64 << 20,
        }).toString('utf8'),
      )
    : [];

  it.each(jobs.map((j, i) => [j.label, i] as const))('%s', (_label, i) => {
    const j = jobs[i]!;
    const want = reference[i]!;
    let got: { ok?: string; error?: string };
    try {
      got = { ok: applyChatTemplate(j.template, j.messages, { tools: j.tools, bosToken: '<s>', eosToken: '</s>' }) };
    } catch (e) {
      got = { error: (e as Error).message };
    }
    if (want.error !== undefined) expect(got.error, `Jinja2 refused: ${want.error}`).toBeDefined();
    else {
      expect(got.error).toBeUndefined();
      expect(got.ok).toBe(want.ok);
    }
  });

  it('each patched construct renders as in Jinja2', () => {
    const vars = { d: { a: 1, b: [1, 2] }, s: 'str', n: 3, l: ['x', 'y'], m: { k: 'v' }, k: ['list', 'key'], nothing: null };
    const cases = [
      '[{{ x|trim }}][{{ x|upper }}][{{ x|lower }}][{{ x|title }}][{{ x|capitalize }}][{{ x|string }}][{{ x|length }}]',
      '[{{ x|items|list|length }}][{{ x|join(",") }}][{{ x|list|length }}][{{ x|reverse|list|length }}][{{ x|sort|list|length }}]',
      '{% for t in x %}{{ t }}{% else %}none{% endfor %}|{% for t in l %}{{ t }}{% endfor %}|{% for k2, v in d|items %}{{ k2 }}{% endfor %}',
      // (Booleans are printed through `if`: jinja2 prints True/False, @huggingface/jinja true/false.)
      '{{ "T" if m[k] is defined else "F" }}|{{ m["k"] }}|{{ l[1] }}|{{ "T" if m[n] is defined else "F" }}|{{ "T" if d[l] is defined else "F" }}',
      '{% for v in [x, d, s, l, n] %}{{ "T" if v is iterable else "F" }}{{ "T" if v is not iterable else "F" }}{% endfor %}',
      '{{ d.b|length }}|{{ s|trim }}|{{ l|join("-") }}|{{ (x|default("dflt")) }}',
    ];
    const want: Array<{ ok?: string; error?: string }> = JSON.parse(
      execFileSync(python!, [RENDERER], { input: JSON.stringify(cases.map((template) => ({ template, context: vars }))) }).toString('utf8'),
    );
    cases.forEach((template, i) => {
      expect(want[i]!.error, template).toBeUndefined();
      expect(applyChatTemplate(template, [], { variables: vars }), template).toBe(want[i]!.ok);
    });
  });

  it('Jinja2 renders every Hermes job (the fixture is a working template)', () => {
    jobs.forEach((j, i) => {
      if (j.template === HERMES) expect(reference[i]!.error, j.label).toBeUndefined();
    });
  });
});
