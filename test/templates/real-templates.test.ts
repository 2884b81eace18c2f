/**
 * The chat templates of Qwen3 (with its <think> handling and enable_thinking), Qwen2.5,
 * Gemma 3 and Llama 3, as their tokenizer_config.json publishes them (see test/tokenizer/PROVENANCE.md),
 * rendered through our template layer from the converted GGUF (so with that vocabulary's
 * BOS/EOS text) must equal what Python's Jinja2 renders (render_jinja2.py), for conversations
 * that reach each template's branches. Gemma 2 and Phi-3.5, whose packages lack a template,
 * use the published templates in shared/templates with their real vocabulary's BOS/EOS;
 * gpt-oss's harmony template is a fixture (fixtures/PROVENANCE.md).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { applyChatTemplate, type ChatMessage, type ChatTool } from '../../src/templates/index.js';
import { SparrowError } from '../../src/errors.js';
import { loadTokenizer, type Tokenizer } from '../../src/tokenizer/index.js';
import { FAMILIES, familyVocabFile, hfTokenizer, phi3VocabFile, type FamilyKey } from '../tokenizer/hf-vocab.js';
import { SHARED, vocabFile } from '../tokenizer/vocabs.js';

const RENDERER = path.join(import.meta.dirname, 'render_jinja2.py');
const python = ['/usr/bin/python3', 'python3'].find((exe) => {
  try {
    execFileSync(exe, ['-c', 'import jinja2'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
});
if (!python) console.warn('real chat template tests skipped: no python3 with Jinja2 (apt-get install python3-jinja2)');

const TOOLS: ChatTool[] = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather in a city',
      parameters: { type: 'object', properties: { city: { type: 'string', description: 'City name' } }, required: ['city'] },
    },
  },
  { type: 'function', function: { name: 'now', description: 'The time', parameters: { type: 'object', properties: {} } } },
];

interface Conversation {
  name: string;
  messages: ChatMessage[];
  tools?: ChatTool[];
  variables?: Record<string, unknown>;
}

const call = (id: string, name: string, args: unknown) => ({ type: 'function', id, function: { name, arguments: args } });

const COMMON: Conversation[] = [
  { name: 'single user', messages: [{ role: 'user', content: 'Tell me a story about a llama.' }] },
  {
    name: 'system and user',
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'Hello! How are you?' },
    ],
  },
  {
    name: 'multi-turn, unicode and whitespace',
    messages: [
      { role: 'system', content: '  Be brief.\n' },
      { role: 'user', content: '  Grüße 🦙\n\nline two  ' },
      { role: 'assistant', content: ' ok \n' },
      { role: 'user', content: '中文？ "quotes" and \\ backslash' },
    ],
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
    name: 'roles that do not alternate',
    messages: [
      { role: 'user', content: 'a' },
      { role: 'user', content: 'b' },
    ],
  },
];

const QWEN3: Conversation[] = [
  ...COMMON,
  { name: 'thinking off', messages: [{ role: 'user', content: 'Quick: 2+2?' }], variables: { enable_thinking: false } },
  { name: 'thinking on', messages: [{ role: 'user', content: 'Think: 2+2?' }], variables: { enable_thinking: true } },
  {
    name: 'earlier reasoning is dropped, text after </think> kept',
    messages: [
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '<think>\nSimple sum.\n</think>\n\n2+2 is 4.' },
      { role: 'user', content: 'And 3+3?' },
    ],
  },
  {
    name: 'last assistant turn keeps its reasoning',
    messages: [
      { role: 'user', content: 'What is 2+2?' },
      { role: 'assistant', content: '<think>\n\nadd them\n\n</think>\n\n\n4' },
    ],
  },
  {
    name: 'reasoning_content field',
    messages: [
      { role: 'system', content: 'S' },
      { role: 'user', content: 'Q' },
      { role: 'assistant', content: 'A', reasoning_content: '\nsteps\n' },
    ],
  },
  {
    name: 'reasoning_content null falls back to <think> in content',
    messages: [
      { role: 'user', content: 'Q' },
      { role: 'assistant', content: 'pre<think>r</think>A', reasoning_content: null },
    ],
  },
  { name: 'tools, no system', messages: [{ role: 'user', content: 'Weather in Paris?' }], tools: TOOLS },
  {
    name: 'tools with system',
    messages: [
      { role: 'system', content: 'You call tools.' },
      { role: 'user', content: 'Weather in Paris?' },
    ],
    tools: TOOLS,
  },
  {
    name: 'multi-step tool calls and parallel results',
    messages: [
      { role: 'user', content: 'Weather in Paris and the time?' },
      {
        role: 'assistant',
        content: '<think>\nNeed two tools.\n</think>\n\n',
        tool_calls: [call('c1', 'get_weather', { city: 'Paris' }), call('c2', 'now', '{}')],
      },
      { role: 'tool', content: '{"temperature": 21}', tool_call_id: 'c1' },
      { role: 'tool', content: '12:00', tool_call_id: 'c2' },
      { role: 'assistant', content: '<think>Got both.</think>It is 21°C at 12:00.' },
    ],
    tools: TOOLS,
  },
  {
    name: 'tool call with content and a later user query',
    messages: [
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: 'Checking.', tool_calls: [{ type: 'function', function: { name: 'get_weather', arguments: { city: 'Oslo' } } }] },
      { role: 'tool', content: 'cold' },
      { role: 'user', content: '<tool_response>\nnot a real query\n</tool_response>' },
      { role: 'assistant', content: '<think>x</think>Cold.' },
    ],
    tools: TOOLS,
  },
  { name: 'no user query', messages: [{ role: 'system', content: 'only system' }] },
];

const GEMMA3: Conversation[] = [
  ...COMMON,
  {
    name: 'content as parts with an image',
    messages: [
      { role: 'system', content: [{ type: 'text', text: 'Describe images.' }] as never },
      { role: 'user', content: [{ type: 'image' }, { type: 'text', text: '  What is this?  ' }] as never },
    ],
  },
  { name: 'content of a bad type', messages: [{ role: 'user', content: 42 as never }] },
];

const LLAMA3: Conversation[] = COMMON;

const GPT_OSS: Conversation[] = [
  ...COMMON.filter((c) => !c.name.includes('alternate')),
  { name: 'reasoning effort and identity', messages: [{ role: 'user', content: 'Hi' }], variables: { reasoning_effort: 'high', model_identity: 'You are Sparrow.' } },
  { name: 'builtin tools', messages: [{ role: 'user', content: 'Search it' }], variables: { builtin_tools: ['browser', 'python'] } },
  { name: 'developer message and tools', messages: [{ role: 'developer', content: 'Use tools.' }, { role: 'user', content: 'Weather?' }], tools: TOOLS },
  {
    name: 'tool call with thinking, result, final answer',
    messages: [
      { role: 'user', content: 'Weather in Paris?' },
      { role: 'assistant', content: '', thinking: 'Need the tool.', tool_calls: [call('c1', 'get_weather', { city: 'Paris' })] },
      { role: 'tool', content: '{"temperature": 21}' },
      { role: 'assistant', content: 'It is 21°C.', thinking: 'Got it.' },
    ],
    tools: TOOLS,
  },
  {
    name: 'pending tool call keeps its analysis',
    messages: [
      { role: 'user', content: 'Weather?' },
      { role: 'assistant', content: 'Calling the tool.', tool_calls: [call('c1', 'get_weather', { city: 'Oslo' })] },
      { role: 'tool', content: 'cold' },
    ],
    tools: TOOLS,
  },
  { name: 'channel tags in content are refused', messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: '<|channel|>final<|message|>x' }] },
  { name: 'tool result without a call is refused', messages: [{ role: 'user', content: 'q' }, { role: 'tool', content: 'x' }] },
];

const QWEN2_5: Conversation[] = [...COMMON, ...QWEN3.filter((c) => c.tools)];

interface Job {
  label: string;
  template: string;
  conversation: Conversation;
  addGenerationPrompt: boolean;
}

function render(jobs: Job[], tok: Tokenizer, fromFile: boolean): Array<{ want: { ok?: string; error?: string }; got: { ok?: string; error?: string } }> {
  const bos = tok.special.bos !== undefined ? tok.tokenText(tok.special.bos) : '';
  const eos = tok.special.eos !== undefined ? tok.tokenText(tok.special.eos) : '';
  const input = jobs.map((j) => ({
    template: j.template,
    context: {
      messages: j.conversation.messages,
      add_generation_prompt: j.addGenerationPrompt,
      bos_token: bos,
      eos_token: eos,
      ...(j.conversation.tools ? { tools: j.conversation.tools } : {}),
      ...j.conversation.variables,
    },
  }));
  const ref = JSON.parse(execFileSync(python!, [RENDERER], { input: JSON.stringify(input), maxBuffer: 64 << 20 }).toString('utf8'));
  return jobs.map((j, i) => {
    let got: { ok?: string; error?: string };
    try {
      got = {
        ok: applyChatTemplate(fromFile ? tok : j.template, j.conversation.messages, {
          addGenerationPrompt: j.addGenerationPrompt,
          tools: j.conversation.tools,
          variables: j.conversation.variables,
          ...(fromFile ? {} : { bosToken: bos, eosToken: eos }),
        }),
      };
    } catch (err) {
      expect(err, j.label).toBeInstanceOf(SparrowError);
      got = { error: (err as Error).message };
    }
    return { want: ref[i], got };
  });
}

interface Case {
  name: string;
  available: boolean;
  conversations: Conversation[];
  /** The vocabulary file, and the template when the file does not carry it. */
  load: () => Promise<{ file: string; template?: string; published?: string }>;
}

const family = (key: FamilyKey, conversations: Conversation[], sharedTemplate?: string): Case => ({
  name: FAMILIES[key].name,
  available: !!python && hfTokenizer(FAMILIES[key].package) !== undefined,
  conversations,
  load: async () => ({
    file: (await familyVocabFile(key))!,
    template: sharedTemplate && fs.readFileSync(path.join(SHARED, 'templates', sharedTemplate), 'utf8'),
    published: hfTokenizer(FAMILIES[key].package)!.config.chat_template as string | undefined,
  }),
});

const CASES: Case[] = [
  family('qwen2_5', QWEN2_5),
  family('qwen3', QWEN3),
  family('gemma3', GEMMA3),
  family('llama3', LLAMA3),
  // Templates the packages lack, from shared/templates, with the real vocabulary's BOS/EOS.
  family('gemma2', COMMON, 'google-gemma-2-2b-it.jinja'),
  {
    // Published with gpt-oss; as in llama.cpp's models/templates (see fixtures/PROVENANCE.md).
    name: 'gpt-oss',
    available: !!python && hfTokenizer('gpt4o') !== undefined,
    conversations: GPT_OSS,
    load: async () => ({
      file: (await familyVocabFile('gptoss'))!,
      template: fs.readFileSync(path.join(import.meta.dirname, 'fixtures', 'openai-gpt-oss-120b.jinja'), 'utf8'),
    }),
  },
  {
    name: 'Phi 3.5',
    available: !!python,
    conversations: COMMON,
    load: async () => ({
      file: await phi3VocabFile(vocabFile('llama-spm')),
      template: fs.readFileSync(path.join(SHARED, 'templates', 'microsoft-Phi-3.5-mini-instruct.jinja'), 'utf8'),
    }),
  },
];

for (const { name, available, conversations, load } of CASES) {
  describe.skipIf(!available)(`${name} chat template against Jinja2`, () => {
    let tok: Tokenizer;
    let template: string;
    let fromFile = true;
    let published: string | undefined;
    beforeAll(async () => {
      const { file, template: shared, published: p } = await load();
      published = p;
      tok = loadTokenizer(file);
      fromFile = shared === undefined;
      template = shared ?? tok.chatTemplate!;
    }, 300_000);

    it('has the template (from the converted GGUF, else shared/templates)', () => {
      expect(typeof template).toBe('string');
      expect(template.length).toBeGreaterThan(100);
      if (fromFile) expect(template).toBe(published); // the converter carried the published one
    });

    it(`renders ${conversations.length} conversations like Jinja2, with and without the generation prompt`, () => {
      const jobs: Job[] = conversations.flatMap((c) =>
        [true, false].map((addGenerationPrompt) => ({ label: `${c.name} / gen=${addGenerationPrompt}`, template, conversation: c, addGenerationPrompt })),
      );
      const results = render(jobs, tok, fromFile);
      let rendered = 0;
      const wrong: string[] = [];
      results.forEach(({ want, got }, i) => {
        const label = jobs[i]!.label;
        if (want.error !== undefined) {
          if (got.error === undefined) wrong.push(`${label}: Jinja2 refused (${want.error}) but we rendered ${JSON.stringify(got.ok)}`);
        } else if (got.error !== undefined) wrong.push(`${label}: we failed (${got.error}) but Jinja2 rendered`);
        else if (got.ok !== want.ok) wrong.push(`${label}:\n  jinja2: ${JSON.stringify(want.ok)}\n  ours:   ${JSON.stringify(got.ok)}`);
        else rendered++;
      });
      expect(wrong).toEqual([]);
      // (Gemma 2 refuses system messages: 2 of its 5 conversations render, 4 jobs.)
      expect(rendered).toBeGreaterThanOrEqual(4);
    });
  });
}
