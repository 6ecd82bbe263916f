// LLM orchestration over OpenAI-compatible endpoints: the layer's public face.
export { LLM, type JsonRequest, type JsonResult, type EmbedRequest, type EmbedResult, type RecordedCall } from './client.js'
export { LLMStream } from './stream.js'
export { LLMError, FAILURE_CLASSES, failureOfCode, type FailureClass, type LLMErrorDetails } from './errors.js'
export { estimateTextTokens, estimateMessageTokens, estimatePromptTokens, trimToBudget, type Trimmed } from './budget.js'
export { extractJson, parseStructured, NOT_FOUND, type OutputSchema } from './structured.js'
export { STEPS as DEGRADATION_STEPS, type Degradation } from './ladder.js'
export type { BreakerState } from './breaker.js'
export {
  LLMConfigSchema,
  ProviderConfigSchema,
  BackoffOptionsSchema,
  BreakerOptionsSchema,
  LadderOptionsSchema,
  BudgetOptionsSchema,
  AdaptiveOptionsSchema,
  type BackoffOptions,
  type BreakerOptions,
  type LadderOptions,
  type BudgetOptions,
  type AdaptiveOptions,
} from './options.js'
export type { LLMMetrics, ProviderMetrics } from './metrics.js'
export type * from './types.js'
