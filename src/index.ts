/**
 * @myriad-agents/core — run very large populations of LLM agents on one machine.
 *
 * The hot paths are Rust behind N-API (crates/myriad-core, crates/myriad-node); this module is the
 * public TypeScript API over them.
 */
export { Embedder, DEFAULT_MODEL, type EmbedderOptions } from './src/embedder.js'
export { SemanticIndex, type SemanticIndexOptions, type Match, type UpsertResult } from './src/semantic-index.js'
export { Registry, type RegistryOptions, type AgentInfo } from './src/registry.js'
export { PML_VERSION, PML_TYPES, type PmlMessage, type PmlType, type PmlStatus, type PmlErrorCode, type ProcessResult } from './src/pml.js'
export { Policy, type PolicyOptions, type DecideOptions, type TransitionBatch } from './src/policy.js'
export { buildState, STATE_DIM, MAX_CANDIDATES, type StateInput, type CandidateFeatures } from './src/policy-state.js'
export {
  Bus,
  MESSAGE_KINDS,
  embeddedBrokerUrl,
  type BusOptions,
  type BusMessage,
  type BusGap,
  type BusStats,
  type OutboundMessage,
  type MessageKind,
  type QosLevel,
} from './src/bus.js'
export {
  Sink,
  SINK_TABLES,
  migrate,
  importArchive,
  type SinkOptions,
  type SinkRows,
  type SinkStats,
  type SinkTable,
  type Timestamp,
  type WriteResult,
} from './src/sink.js'
export {
  LLM,
  LLMStream,
  LLMError,
  FAILURE_CLASSES,
  DEGRADATION_STEPS,
  estimateTextTokens,
  estimatePromptTokens,
  trimToBudget,
  extractJson,
  type LLMConfig,
  type ProviderConfig,
  type ChatRequest,
  type ChatResult,
  type ChatMessage,
  type StreamRequest,
  type StreamResult,
  type StreamChunk,
  type JsonRequest,
  type JsonResult,
  type EmbedRequest,
  type EmbedResult,
  type CallOptions,
  type LLMMetrics,
  type Degradation,
  type DegradationStep,
  type FailureClass,
  type OutputSchema,
  type RecordedCall,
} from './src/llm/index.js'
export { MyriadError, type ErrorCode } from './src/errors.js'
export { initRuntime, onnxRuntimePath, type RuntimeInfo } from './src/runtime.js'
export { simdKernels } from './src/kernels.js'
