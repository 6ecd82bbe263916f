// `@myriad-agents/core/testing`: what you need to test agents without a real provider: an
// OpenAI-compatible server with scripted replies, latency and faults, and seeded test data.
export {
  LLMServer,
  latencyOf,
  startLLMServer,
  type Behaviour,
  type LatencyDistribution,
  type LLMServerOptions,
  type Rule,
  type ServerStats,
} from './llm-server.js'
export { cosine, mulberry32 } from './math.js'
