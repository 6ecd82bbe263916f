// The LLM layer's public types: configuration, requests, results.
import type { BreakerOptions } from './breaker.js'
import type { BudgetOptions } from './budget.js'
import type { LadderOptions } from './ladder.js'
import type { AdaptiveOptions } from './limits.js'
import type { BackoffOptions } from './retry.js'

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

export interface ModelPrice {
  /** Price per 1,000,000 prompt tokens (any currency; metrics().cost is in the same one). */
  inputPer1M: number
  outputPer1M: number
}

export interface ProviderConfig {
  /** The name requests and failover refer to. */
  name: string
  /** OpenAI-compatible base URL including the version prefix, e.g. `https://api.openai.com/v1`. */
  baseUrl: string
  /** The API key itself; prefer `apiKeyEnv`. */
  apiKey?: string
  /** Environment variable holding the API key (read once, at construction). */
  apiKeyEnv?: string
  /** Models this provider serves; the first is its default. */
  models: string[]
  /** A cheaper model used on the degradation ladder's `fallback-model` step. */
  fallbackModel?: string
  /** Extra headers sent with every request (e.g. `OpenAI-Organization`). */
  headers?: Record<string, string>
  /** Prices per model, for metrics().cost. */
  prices?: Record<string, ModelPrice>
  limits?: {
    /** Most requests in flight to this provider (default 256). */
    concurrency?: number
    /** AIMD between `min` and `concurrency`; false keeps the limit fixed (default on). */
    adaptive?: boolean | Partial<AdaptiveOptions>
    requestsPerMinute?: number
    tokensPerMinute?: number
  }
  pool?: {
    /** Sockets to this origin (default 64). */
    connections?: number
    /** Requests written ahead on one keep-alive socket (default 8; 1 = no pipelining). */
    pipelining?: number
    keepAliveTimeoutMs?: number
  }
}

export interface LLMConfig {
  /** In failover order: a call goes to the first whose breaker lets it through. */
  providers: ProviderConfig[]
  /** Most calls in flight across all providers (default 1024). */
  concurrency?: number
  /** Attempts after the first for retryable failures (default 3). */
  retries?: number
  /** Whole call, queueing and retries included (default 60,000 ms). */
  timeoutMs?: number
  connectTimeoutMs?: number
  /** Time to the response headers of one attempt (default: `timeoutMs`; undici checks it on a ~0.5 s tick). */
  headersTimeoutMs?: number
  /** Longest silence between body chunks of one attempt (default 30,000 ms; exact for streams, ~0.5 s ticks otherwise). */
  idleTimeoutMs?: number
  backoff?: Partial<BackoffOptions>
  breaker?: Partial<BreakerOptions>
  ladder?: Partial<LadderOptions>
  budget?: Partial<BudgetOptions>
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
