// The OpenAI chat-completions wire format: request bodies out, replies in.
import { LLMError } from './errors.js'
import type { ChatMessage, ChatRequest, ToolCall } from './types.js'

export function chatBody(request: ChatRequest, messages: ChatMessage[], model: string, stream: boolean): string {
  const body: Record<string, unknown> = { model, messages }
  if (request.temperature !== undefined) body.temperature = request.temperature
  if (request.maxTokens !== undefined) body.max_tokens = request.maxTokens
  if (request.tools) body.tools = request.tools
  if (request.toolChoice) body.tool_choice = request.toolChoice
  if (request.responseFormat) body.response_format = request.responseFormat
  if (stream) {
    body.stream = true
    // Usage arrives in a last chunk only when asked for.
    body.stream_options = { include_usage: true }
  }
  if (request.extra) Object.assign(body, request.extra)
  return JSON.stringify(body)
}

export interface ChatReply {
  message: ChatMessage
  text: string
  toolCalls: ToolCall[]
  finishReason: string | null
  promptTokens: number | undefined
  completionTokens: number | undefined
}

interface WireChoice {
  message?: { role?: string; content?: string | null; tool_calls?: ToolCall[] }
  finish_reason?: string | null
}

interface WireCompletion {
  choices?: WireChoice[]
  usage?: { prompt_tokens?: number; completion_tokens?: number }
}

export function readChatReply(json: unknown, provider: string, model: string): ChatReply {
  const choice = (json as WireCompletion | null)?.choices?.[0]
  const message = choice?.message
  if (!message || typeof message !== 'object') {
    throw new LLMError('bad_response', `${provider} sent a completion without choices[0].message`, { provider, model })
  }
  const usage = (json as WireCompletion).usage
  const toolCalls = Array.isArray(message.tool_calls) ? message.tool_calls : []
  const text = typeof message.content === 'string' ? message.content : ''
  return {
    message: toolCalls.length ? { role: 'assistant', content: message.content ?? null, tool_calls: toolCalls } : { role: 'assistant', content: text },
    text,
    toolCalls,
    finishReason: choice.finish_reason ?? null,
    promptTokens: usage?.prompt_tokens,
    completionTokens: usage?.completion_tokens,
  }
}

interface WireChunk {
  choices?: { delta?: { content?: string | null }; finish_reason?: string | null }[]
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null
}

export interface StreamDelta {
  delta: string
  finishReason: string | null
  promptTokens: number | undefined
  completionTokens: number | undefined
}

export function readStreamEvent(data: string, provider: string, model: string): StreamDelta {
  let chunk: WireChunk
  try {
    chunk = JSON.parse(data) as WireChunk
  } catch (cause) {
    throw new LLMError('bad_response', `${provider} sent a stream event that is not JSON: ${data.slice(0, 200)}`, { provider, model }, { cause })
  }
  const choice = chunk.choices?.[0]
  return {
    delta: choice?.delta?.content ?? '',
    finishReason: choice?.finish_reason ?? null,
    promptTokens: chunk.usage?.prompt_tokens,
    completionTokens: chunk.usage?.completion_tokens,
  }
}

interface WireEmbeddings {
  data?: { embedding?: number[]; index?: number }[]
  usage?: { prompt_tokens?: number }
}

export function readEmbeddings(json: unknown, count: number, provider: string, model: string): { vectors: number[][]; promptTokens: number | undefined } {
  const data = (json as WireEmbeddings | null)?.data
  if (!Array.isArray(data) || data.length !== count) {
    throw new LLMError('bad_response', `${provider} sent ${Array.isArray(data) ? data.length : 'no'} embeddings for ${count} inputs`, { provider, model })
  }
  const vectors: number[][] = new Array(count)
  for (const [i, item] of data.entries()) {
    if (!Array.isArray(item.embedding)) throw new LLMError('bad_response', `${provider}: embedding ${i} is not an array`, { provider, model })
    vectors[item.index ?? i] = item.embedding
  }
  return { vectors, promptTokens: (json as WireEmbeddings).usage?.prompt_tokens }
}
