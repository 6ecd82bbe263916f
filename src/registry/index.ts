// The registry of agents with its trust ledger, driven by PML messages.
export { Registry, type RegistryOptions, type AgentInfo } from './registry.js'
export { RegistryOptionsSchema } from './options.js'
export { PML_VERSION, PML_TYPES, type PmlMessage, type PmlType, type PmlStatus, type ProcessResult } from './pml.js'
export type { PmlErrorCode } from '../errors/index.js'
