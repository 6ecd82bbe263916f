// The LLM layer's public types: configuration, requests, results.
export type { LLMConfig, ModelPrice, ProviderConfig } from './options.js'

export type Role = 'system' | 'user' | 'assistant' | 'tool'

export interface ToolCall {
  id: string
  type: 'function'
  function: { name: string; arguments: string }
}

export interface ChatMessage {
  role: Role
  content: string | null
  name?: string
  tool_calls?: ToolCall[]
  tool_call_id?: string
}

export interface ToolDefinition {
  type: 'function'
  function: { name: string; description?: string; parameters?: Record<string, unknown> }
}

export interface CallOptions {
  provider?: string
  model?: string
  timeoutMs?: number
  retries?: number
  signal?: AbortSignal
  /** false: the degradation ladder may skip this call (default true). */
  critical?: boolean
  /** false: stay on this provider/model even when its breaker is open (default true). */
  failover?: boolean
  /** Prompt budget in tokens for this call (overrides the configured one); false: no trimming. */
  maxPromptTokens?: number | false
}

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name: string; schema: Record<string, unknown>; strict?: boolean } }

export interface ChatRequest extends CallOptions {
  messages: ChatMessage[]
  temperature?: number
  maxTokens?: number
  tools?: ToolDefinition[]
  toolChoice?: 'auto' | 'none' | 'required' | { type: 'function'; function: { name: string } }
  responseFormat?: ResponseFormat
  /** Fields passed through to the request body as they are (seed, top_p, stop, ...). */
  extra?: Record<string, unknown>
}

export interface Usage {
  promptTokens: number
  completionTokens: number
}

export interface ChatResult {
  text: string
  message: ChatMessage
  toolCalls: ToolCall[]
  finishReason: string | null
  usage: Usage
  provider: string
  model: string
  /** Attempts this call took (1 = no retry). */
  attempts: number
  latencyMs: number
  /** Messages the prompt budget dropped or shortened. */
  trimmed: number
  /** The ladder step in force when the call was routed. */
  degradation: DegradationStep
}

export type DegradationStep = 'normal' | 'fallback-model' | 'skip-non-critical' | 'record-only'

export interface StreamChunk {
  /** Text added by this chunk. */
  delta: string
  /** All text so far. */
  text: string
  finishReason: string | null
}

export interface StreamResult extends ChatResult {
  /** The early-return hook (or a `break` out of the loop) ended the stream before the server did. */
  stoppedEarly: boolean
}

export interface StreamRequest extends ChatRequest {
  /** Called on every chunk; returning true stops reading and closes the connection. */
  until?: (text: string, chunk: StreamChunk) => boolean
}
