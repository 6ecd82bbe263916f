// The experiment file: its schema (one source for the file, the options and the JSON Schema), its
// loading with precedence and sources, and the `Experiment` options it becomes.
export { ExperimentConfigSchema, PopulationFileEntrySchema, configJsonSchema, type ExperimentConfig, type ExperimentConfigInput } from './schema.js'
export { TEST_SERVER_PLACEHOLDER, loadConfig, parseOverride, redactSecrets, type LoadConfigOptions, type LoadedConfig, type Override } from './load.js'
export { ENV_VARS, type EnvVar } from './env.js'
export { agentTypesOf, experimentOptions, importAgentsModule } from './experiment.js'
