/** Chats: conversation history over a session, with prefix reuse of the KV cache. */
export { Chat, CHAT_OPTION_KEYS } from './chat.js';
export type { ChatOptions } from './chat.js';
