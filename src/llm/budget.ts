// Prompt budget: estimate tokens without a tokenizer and trim the context to fit before sending.
import { type BudgetOptions, BudgetOptionsSchema } from './options.js'
import { LLMError } from './errors.js'
import type { ChatMessage } from './types.js'

export const DEFAULT_BUDGET: BudgetOptions = BudgetOptionsSchema.parse({})

const TRIM_MARK = '\n[...]\n'

export function estimateTextTokens(text: string, opts: Pick<BudgetOptions, 'charsPerToken'> = DEFAULT_BUDGET): number {
  return Math.ceil(text.length / opts.charsPerToken)
}

export function estimateMessageTokens(message: ChatMessage, opts: BudgetOptions = DEFAULT_BUDGET): number {
  let chars = message.content?.length ?? 0
  if (message.tool_calls) for (const call of message.tool_calls) chars += call.function.name.length + call.function.arguments.length
  return opts.messageOverhead + Math.ceil(chars / opts.charsPerToken)
}

export function estimatePromptTokens(messages: ChatMessage[], opts: BudgetOptions = DEFAULT_BUDGET): number {
  let total = 0
  for (const m of messages) total += estimateMessageTokens(m, opts)
  return total
}

export interface Trimmed {
  messages: ChatMessage[]
  tokens: number
  /** Messages dropped or shortened. */
  trimmed: number
}

/**
 * Fits `messages` into `budget` estimated tokens. System messages and the last message (the
 * question) are kept; the oldest other messages go first, an assistant message with tool calls
 * together with the tool replies that answer it (a tool reply without its call is rejected by
 * providers). If the kept ones still do not fit, the middle of the longest of them is cut out.
 * ERR_LLM_BUDGET when even that cannot fit.
 */
export function trimToBudget(messages: ChatMessage[], budget: number, opts: BudgetOptions = DEFAULT_BUDGET): Trimmed {
  let tokens = estimatePromptTokens(messages, opts)
  if (tokens <= budget) return { messages, tokens, trimmed: 0 }
  const kept = messages.slice()
  let trimmed = 0
  const droppable = (i: number) => i < kept.length - 1 && kept[i].role !== 'system'
  for (let i = 0; i < kept.length && tokens > budget; ) {
    if (!droppable(i)) {
      i++
      continue
    }
    // The message and the tool replies that belong to it leave together.
    let end = i + 1
    if (kept[i].tool_calls?.length) while (end < kept.length - 1 && kept[end].role === 'tool') end++
    for (const m of kept.splice(i, end - i)) {
      tokens -= estimateMessageTokens(m, opts)
      trimmed++
    }
  }
  while (tokens > budget) {
    const longest = longestText(kept)
    if (longest < 0) break
    const message = kept[longest]
    const text = message.content ?? ''
    const excessChars = (tokens - budget) * opts.charsPerToken + TRIM_MARK.length
    if (excessChars >= text.length) break
    const keepChars = text.length - excessChars
    const head = Math.ceil(keepChars / 2)
    const shortened = text.slice(0, head) + TRIM_MARK + text.slice(text.length - (keepChars - head))
    tokens += estimateMessageTokens({ ...message, content: shortened }, opts) - estimateMessageTokens(message, opts)
    kept[longest] = { ...message, content: shortened }
    trimmed++
  }
  if (tokens > budget) {
    throw new LLMError('budget', `the prompt needs ~${tokens} tokens after trimming; the budget is ${budget}`)
  }
  return { messages: kept, tokens, trimmed }
}

function longestText(messages: ChatMessage[]): number {
  let best = -1
  let bestLength = TRIM_MARK.length * 2
  for (const [i, m] of messages.entries()) {
    const length = m.content?.length ?? 0
    if (length > bestLength) {
      best = i
      bestLength = length
    }
  }
  return best
}
