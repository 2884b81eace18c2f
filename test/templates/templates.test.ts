/**
 * Chat templates: every template in ../shared/templates, and each built-in fallback, must
 * render several conversations exactly as an independent Jinja2 does (python3-jinja2, in the
 * environment Hugging Face transformers uses; see render_jinja2.py). Templates that refuse a
 * conversation (raise_exception) must refuse it here too.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUILTIN_TEMPLATES, applyChatTemplate, detectChatFormat, type ChatMessage, type ChatTool } from '../../src/templates/index.js';
import { SparrowError } from '../../src/errors.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';

const TEMPLATES_DIR = path.resolve(import.meta.dirname, '../../../shared/templates');
const RENDERER = path.join(import.meta.dirname, 'render_jinja2.py');

/** A Python with Jinja2: Debian's first (python3-jinja2), then whatever python3 is on PATH. */
const python = ['/usr/bin/python3', 'python3'].find((exe) => {
  try {
    execFileSync(exe, ['-c', 'import jinja2'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
if (!python) console.warn('chat template tests skipped: no python3 with Jinja2 (apt-get install python3-jinja2)');

const TOOLS: ChatTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string', description: 'City name' } }, required: ['city'] },
    },
  },
];

const CONVERSATIONS: Array<{ name: string; messages: ChatMessage[]; tools?: ChatTool[] }> = [
  {
    name: 'system and user',
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Hello! How are you?' },
    ],
  },
  {
    name: 'multi-turn',
    messages: [
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '2+2 is 4.' },
      { role: 'user', content: 'And 3+3?' },
    ],
  },
  {
    name: 'system and multi-turn, unicode and whitespace',
    messages: [
      { role: 'system', content: '  Be brief.\n' },
      { role: 'user', content: '  Grüße 🦙\n\nline two  ' },
      { role: 'assistant', content: '<think>hmm</think> ok ' },
      { role: 'user', content: '中文？ "quotes" and \\ backslash' },
    ],
  },
  {
    name: 'single user message',
    messages: [{ role: 'user', content: 'Tell me a story about a llama.' }],
  },
  {
    name: 'long multi-turn',
    messages: [
      { role: 'user', content: 'Hi' },
      { role: 'assistant', content: 'Hello! What can I do?' },
      { role: 'user', content: 'Count to three.' },
      { role: 'assistant', content: '1, 2, 3.' },
      { role: 'user', content: 'Now backwards.' },
    ],
  },
  {
    name: 'tools offered',
    messages: [{ role: 'user', content: 'Weather in Paris?' }],
    tools: TOOLS,
  },
  {
    name: 'tool call and result',
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      {
        role: 'assistant',
        content: '',
        tool_calls: [{ type: 'function', id: 'call12345', function: { name: 'get_weather', arguments: { city: 'Paris' } } }],
      },
      { role: 'tool', content: '{"temperature": 21}', tool_call_id: 'call12345', name: 'get_weather' },
    ],
    tools: TOOLS,
  },
];

interface Job {
  label: string;
  template: string;
  messages: ChatMessage[];
  tools?: ChatTool[];
  addGenerationPrompt: boolean;
}

function jobsFor(label: string, template: string): Job[] {
  const jobs: Job[] = [];
  for (const c of CONVERSATIONS) {
    for (const addGenerationPrompt of [true, false]) {
      jobs.push({ label: `${label} / ${c.name} / gen=${addGenerationPrompt}`, template, messages: c.messages, tools: c.tools, addGenerationPrompt });
    }
  }
  return jobs;
}

const BOS = '<s>';
const EOS = '</s>';

/** Renders all jobs with Jinja2 in one Python process. */
function renderWithJinja2(jobs: Job[]): Array<{ ok?: string; error?: string }> {
  const input = jobs.map((j) => ({
    template: j.template,
    context: {
      messages: j.messages,
      add_generation_prompt: j.addGenerationPrompt,
      bos_token: BOS,
      eos_token: EOS,
      ...(j.tools ? { tools: j.tools } : {}),
    },
  }));
  const out = execFileSync(python!, [RENDERER], { input: JSON.stringify(input), maxBuffer: 64 << 20 });
  return JSON.parse(out.toString('utf8'));
}

function renderOurs(j: Job): { ok?: string; error?: string } {
  try {
    return { ok: applyChatTemplate(j.template, j.messages, { addGenerationPrompt: j.addGenerationPrompt, tools: j.tools, bosToken: BOS, eosToken: EOS }) };
  } catch (err) {
    expect(err).toBeInstanceOf(SparrowError);
    return { error: (err as Error).message };
  }
}

function compareAll(jobs: Job[]): void {
  const reference = renderWithJinja2(jobs);
  let rendered = 0;
  jobs.forEach((job, i) => {
    const want = reference[i]!;
    const got = renderOurs(job);
    if (want.error !== undefined) {
      expect(got.error, `${job.label}: Jinja2 refused (${want.error}) but we rendered`).toBeDefined();
    } else {
      expect(got.error, `${job.label}: we failed but Jinja2 rendered`).toBeUndefined();
      expect(got.ok, job.label).toBe(want.ok);
      rendered++;
    }
  });
  expect(rendered).toBeGreaterThanOrEqual(6); // at least three conversations, with and without the prompt
}

const files = fs.readdirSync(TEMPLATES_DIR).filter((f) => f.endsWith('.jinja')).sort();

describe.skipIf(!python)('chat templates against Jinja2', () => {
  it('finds the shared templates', () => {
    expect(files.length).toBeGreaterThanOrEqual(6);
  });

  it.each(files)('%s renders like Jinja2', (file) => {
    compareAll(jobsFor(file, fs.readFileSync(path.join(TEMPLATES_DIR, file), 'utf8')));
  });

  it.each(Object.keys(BUILTIN_TEMPLATES))('built-in %s renders like Jinja2', (format) => {
    const jobs = jobsFor(format, BUILTIN_TEMPLATES[format as keyof typeof BUILTIN_TEMPLATES]).filter((j) => !j.tools);
    compareAll(jobs);
  });
});

describe('chat template API', () => {
  const conversation: ChatMessage[] = [
    { role: 'system', content: 'S' },
    { role: 'user', content: 'U' },
  ];

  it('uses the template from GGUF metadata, with its BOS/EOS text', () => {
    const metadata = {
      'tokenizer.chat_template': '{{ bos_token }}{% for m in messages %}[{{ m.role }}:{{ m.content }}]{% endfor %}{{ eos_token }}',
      'tokenizer.ggml.tokens': ['<unk>', '<s>', '</s>'],
      'tokenizer.ggml.bos_token_id': 1,
      'tokenizer.ggml.eos_token_id': 2,
    };
    expect(applyChatTemplate(metadata, conversation)).toBe('<s>[system:S][user:U]</s>');
  });

  it('falls back to a built-in format chosen from the vocabulary', () => {
    const has = (...texts: string[]) => (t: string) => texts.includes(t);
    expect(detectChatFormat(has('<|im_start|>', '<|im_end|>'))).toBe('chatml');
    expect(detectChatFormat(has('<|start_header_id|>', '<|eot_id|>'))).toBe('llama3');
    expect(detectChatFormat(has('<start_of_turn>'))).toBe('gemma');
    expect(detectChatFormat(has('<|user|>', '<|end|>'))).toBe('phi3');
    expect(detectChatFormat(has('[INST]'))).toBe('mistral');
    expect(detectChatFormat(has(), 'spm')).toBe('llama2');
    expect(detectChatFormat(has(), 'bpe')).toBe('chatml');
    // stories260K has no template and an SPM vocabulary: Llama 2 format with its BOS/EOS.
    const tok = loadTokenizer(path.resolve(import.meta.dirname, '../../../shared/models/stories260K-f32.gguf'));
    expect(tok.chatTemplate).toBeUndefined();
    expect(applyChatTemplate(tok, conversation)).toBe('<s>[INST] <<SYS>>\nS\n<</SYS>>\n\nU [/INST]');
  });

  it('renders the ChatML fallback with a generation prompt', () => {
    expect(applyChatTemplate('', conversation, { format: 'chatml' })).toBe(
      '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n',
    );
    expect(applyChatTemplate('', conversation, { format: 'chatml', addGenerationPrompt: false })).toBe(
      '<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n',
    );
  });

  it('rejects bad input with clear errors', () => {
    expect(() => applyChatTemplate('{{ x', conversation)).toThrow(/cannot parse/);
    expect(() => applyChatTemplate('x', 'hi' as never)).toThrow(/messages must be an array/);
    expect(() => applyChatTemplate('x', [{ role: 1 } as never])).toThrow(/messages\[0\]\.role/);
    expect(() => applyChatTemplate('x', [{ role: 'user', content: 5 as never }])).toThrow(/content must be a string or an array of parts/);
    expect(() => applyChatTemplate('x', [{ role: 'user', content: [{ text: 'no type' }] as never }])).toThrow(/content\[0\] must be an object with a string type/);
    expect(applyChatTemplate("{{ messages[0].content[0].text }}", [{ role: 'user', content: [{ type: 'text', text: 'parts' }] }])).toBe('parts');
    expect(() => applyChatTemplate('x', conversation, { addGenerationPrompt: 'yes' as never })).toThrow(/addGenerationPrompt/);
    expect(() => applyChatTemplate('x', conversation, { format: 'nope' as never })).toThrow(/options\.format/);
    expect(() => applyChatTemplate("{{ raise_exception('no system') }}", conversation)).toThrow(/no system/);
  });
});

describe('ChatContentPart', () => {
  it('is a public type (dist/src/index.d.ts), and the parts reach the template as given', async () => {
    // The declaration file is what users type-check against (npm run build:ts writes it).
    const dts = fs.readFileSync(path.resolve(import.meta.dirname, '../../dist/src/index.d.ts'), 'utf8');
    expect(dts).toMatch(/export type \{[^}]*\bChatContentPart\b[^}]*\} from '\.\/templates\/index\.js'/);
    const api: typeof import('../../src/index.js') = await import('../../src/index.js');
    const parts: import('../../src/index.js').ChatContentPart[] = [{ type: 'text', text: 'Hi' }, { type: 'image', url: 'x.png' }];
    const out = api.applyChatTemplate('{% for p in messages[0].content %}{{ p.type }}:{{ p.text or p.url }};{% endfor %}', [{ role: 'user', content: parts }]);
    expect(out).toBe('text:Hi;image:x.png;');
  });
});
