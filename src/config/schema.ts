// The experiment file (`experiment.yaml` or `.json`): one zod schema for the file, the options it
// becomes and `myriad config schema` (its JSON Schema). Its sections are the `Experiment` options'
// own schemas (bus, sink, clock, concurrency, matching, the LLM config), so the file and the
// TypeScript options cannot drift; what only a file needs is added here: the agents module and
// population by name, the ticks to run, and secrets by reference rather than by value.
import { z } from 'zod'

import { LLMConfigSchema, ProviderConfigSchema } from '../llm/index.js'
import { ExperimentOptionsSchema, OnMissSchema, ReplaySourceSchema, checkReplay } from '../runtime/index.js'

const O = ExperimentOptionsSchema.shape

const ProviderFileSchema = ProviderConfigSchema.omit({ apiKey: true })
  .extend({
    apiKey: z.string().optional().describe(`Only as a reference: \`\${ENV_VAR}\` (or MYRIAD_LLM_KEY). A key written in the file is refused.`),
    apiKeyFile: z.string().min(1).optional().describe('A file holding the API key (read at start, relative to the experiment file).'),
  })
  .describe('One OpenAI-compatible endpoint')

const { providers: _providers, ...llmShape } = LLMConfigSchema.shape

const LLMFileSchema = z
  .strictObject({
    ...llmShape,
    providers: z.array(ProviderFileSchema).min(1, 'llm needs at least one provider').optional().describe('In failover order.'),
    agentBudget: O.llmBudget.describe('A per-agent LLM budget; a call past it fails with ERR_LLM_BUDGET.'),
    replay: ReplaySourceSchema.optional().describe(
      "Answer the calls from an earlier run's llm_calls: its run directory (relative to this file), or { from: postgres://..., exp }.",
    ),
    onMiss: OnMissSchema,
  })
  .superRefine(checkReplay)
  .describe('The LLM client the agents share (ctx.llm)')

export const PopulationFileEntrySchema = z
  .strictObject({
    agent: z.string().min(1).describe("An agent type's name (`defineAgent({ name })`), exported by the agents module."),
    count: z.number().int().min(0).describe('How many agents of this type.'),
    profiles: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Where the profiles come from: the name of an export of the agents module (an array, a function `(i, rand) => profile` or an iterable), or a `.json` (array) / `.jsonl` (one per line) file relative to the experiment file. Omitted: the export `profiles` when the module has one (an object keyed by agent name, or a function `(i, rand, agentName)`), else `{}` per agent.',
      ),
  })
  .describe('One population entry')

export const ExperimentConfigSchema = z
  .strictObject({
    $schema: z.string().optional().describe('The JSON Schema of this file, for editors (`myriad config schema`).'),
    experiment: z
      .strictObject({
        name: O.name,
        seed: O.seed,
        params: O.params,
        ticks: z.number().int().min(0).default(10).describe('Ticks to run (lockstep), or turns per agent (async).'),
        groups: O.groups,
        stepTimeoutMs: O.stepTimeoutMs,
        maxConsecutiveFailures: O.maxConsecutiveFailures,
        deliveryTimeoutMs: O.deliveryTimeoutMs,
      })
      .describe('The run itself'),
    agents: z
      .strictObject({
        module: z.string().min(1).describe('The TypeScript or JavaScript module that exports the agent types, relative to the experiment file.'),
        population: z.array(PopulationFileEntrySchema).min(1).describe('Who takes part.'),
      })
      .describe('The agent types and how many of each'),
    llm: LLMFileSchema.optional(),
    testServer: z
      .strictObject({
        latencyMs: z.number().min(0).default(50).describe('Latency of each reply.'),
        jitterMs: z.number().min(0).default(0).describe('Latency drawn uniformly within ± this.'),
        seed: z.number().int().default(42),
      })
      .optional()
      .describe(
        "Myriad's OpenAI-compatible test server (deterministic replies, no key, no network), started by `myriad run` for the run when the first provider has no baseUrl (nor MYRIAD_LLM_URL): it becomes that baseUrl.",
      ),
    bus: O.bus,
    sink: O.sink,
    clock: O.clock,
    concurrency: O.concurrency,
    matching: O.matching,
    checkpoint: O.checkpoint,
  })
  .describe('An experiment file (experiment.yaml)')

export type ExperimentConfig = z.output<typeof ExperimentConfigSchema>
export type ExperimentConfigInput = z.input<typeof ExperimentConfigSchema>

/** The file's JSON Schema (what `myriad config schema` prints): the input side, defaults optional. */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ExperimentConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>
  return { ...schema, $id: 'https://myriad-agents.dev/schema/experiment.json', title: 'Myriad experiment file' }
}
