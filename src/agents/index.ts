// Agents: a definition is data (`defineAgent`), and a turn sees a `ctx`.
export { defineAgent, type AgentSpec, type AgentType, type Activation, type Handler, type Handlers } from './define.js'
export { BUILTIN_KINDS, type BuiltinKind, type Message, type MessageSchemas, type BodyOf } from './messages.js'
export type { AgentContext, AgentLLM, AgentMemory, FindHelpersOptions, Helper, Outcome, Outgoing, Recollection, SendOptions } from './context.js'
