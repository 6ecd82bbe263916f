// The experiment runtime: a population stepped on the native core.
export { Experiment, type Progress, type RunOptions } from './experiment.js'
export { ExperimentOptionsSchema, type ExperimentOptions } from './options.js'
export type { PopulationEntry, ProfileSource } from './population.js'
export type { RunSummary, TickInfo, TurnError, RecordsAt } from './summary.js'
export type { DeliveryStats } from './mailbox.js'
export type { AgentBudget } from './agent-llm.js'
