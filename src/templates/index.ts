/** Chat templates: GGUF Jinja templates rendered with @huggingface/jinja, plus built-in formats. */
export { applyChatTemplate, detectChatFormat, BUILTIN_TEMPLATES } from './template.js';
export type { ChatMessage, ChatContentPart, ChatTool, ChatFormat, ApplyChatTemplateOptions, ChatTemplateSource } from './template.js';
