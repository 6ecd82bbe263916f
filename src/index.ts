/**
 * @myriad-agents/core — run very large populations of LLM agents on one machine.
 *
 * The hot paths are Rust behind N-API (crates/myriad-core, crates/myriad-node); this module is the
 * public TypeScript API over them: one folder per component, each with an index.ts as its face.
 */
export * from './agents/index.js'
export * from './runtime/index.js'
export * from './surveys/index.js'
export * from './matching/index.js'
export * from './registry/index.js'
export * from './policy/index.js'
export * from './bus/index.js'
export * from './sink/index.js'
export * from './llm/index.js'
export { MyriadError, ERROR_CODES, type ErrorCode, type ErrorComponent } from './errors/index.js'
/** zod, as the package uses it: agent profiles and message kinds are zod schemas. */
export { z } from 'zod'
export { initRuntime, onnxRuntimePath, type RuntimeInfo } from './native/index.js'
