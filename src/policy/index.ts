// The MARL routing policy and the 50-feature state it decides on.
export { Policy, type DecideOptions, type TransitionBatch } from './policy.js'
export { PolicyOptionsSchema, type PolicyOptions } from './options.js'
export { buildState, STATE_DIM, MAX_CANDIDATES, type StateInput, type CandidateFeatures } from './state.js'
