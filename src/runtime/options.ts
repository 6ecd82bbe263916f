// The options of an `Experiment`, as a zod schema: the types are inferred from it and the coming
// configuration file reuses it. The population is checked by `Population.build` (its entries hold
// agent types and functions, which no schema describes), the LLM config by the LLM's own schema.
import { z } from 'zod'

import { BusOptionsSchema } from '../bus/index.js'
import { LLM, LLMConfigSchema } from '../llm/index.js'
import { EmbedderOptionsSchema } from '../matching/index.js'
import { PolicyOptionsSchema } from '../policy/index.js'
import { RegistryOptionsSchema } from '../registry/index.js'
import type { PopulationEntry } from './population.js'

const positive = z.number().positive()
const positiveInt = z.number().int().positive()

/** Bus settings an experiment passes on to each group's connection (it sets `exp`, `group` and `agents` itself). */
/** A run to answer LLM calls from: its run directory (the archive), or a Postgres URL with its exp id. */
export const ReplaySourceSchema = z.union([
  z.string().min(1),
  z.strictObject({
    from: z.string().min(1).describe('A run directory, or a postgres:// URL.'),
    exp: z.string().min(1).optional().describe("The recorded run's exp id (`<name>/<runId>`); needed for Postgres, or a directory with several runs."),
    schema: z.string().min(1).optional().describe('The Postgres schema (default myriad).'),
  }),
])

export const OnMissSchema = z
  .enum(['error', 'live'])
  .default('error')
  .describe(
    "A call the replay has no match for: 'error' fails it with ERR_REPLAY_MISMATCH, 'live' sends it to the providers (its llm_calls row says replay: 'live').",
  )

/** Providers or a replay, and a live fallback only with providers (the experiment file checks the same). */
export function checkReplay(c: { providers?: unknown[]; replay?: unknown; onMiss: string }, ctx: z.RefinementCtx): void {
  if (!c.providers && c.replay === undefined) ctx.addIssue({ code: 'custom', path: ['providers'], message: 'llm needs providers, or a replay to answer from' })
  if (c.onMiss === 'live' && !c.providers) ctx.addIssue({ code: 'custom', path: ['onMiss'], message: "onMiss 'live' needs providers to send the misses to" })
  if (c.onMiss === 'live' && c.replay === undefined) ctx.addIssue({ code: 'custom', path: ['onMiss'], message: 'onMiss is for a replay' })
}

/**
 * The LLM configuration an experiment takes: the client's, with `replay` (answers from an earlier
 * run) and `onMiss`; providers may be left out when every call is replayed.
 */
const ExperimentLLMConfigSchema = LLMConfigSchema.extend({
  providers: LLMConfigSchema.shape.providers.optional(),
  replay: ReplaySourceSchema.optional().describe(
    "Answer calls from an earlier run's llm_calls, by (agent, tick, call index), checked by request hash: its run directory, a postgres:// URL with { from, exp }.",
  ),
  onMiss: OnMissSchema,
}).superRefine(checkReplay)

const BusSettingsSchema = BusOptionsSchema.omit({ exp: true, group: true, agents: true, clientId: true })

export const ExperimentOptionsSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a name of 1-64 letters, digits, _ . - (it names the run directory and the topics)')
      .describe('The experiment; records go under it.'),
    seed: z.number().int().min(0).max(0xffff_ffff).default(0).describe('Seeds every random stream: the same seed gives the same run.'),
    population: z
      .array(z.custom<PopulationEntry>((v) => typeof v === 'object' && v !== null, 'a { agent, count, profiles, ids? } entry'))
      .min(1)
      .describe('Who takes part: `{ agent, count, profiles, ids? }` per agent type.'),
    llm: z
      .union([z.instanceof(LLM), ExperimentLLMConfigSchema])
      .optional()
      .describe(
        'An `LLM` client, or its configuration (the experiment then owns and closes it), with `replay` to answer from an earlier run. Without one, LLM calls fail with ERR_LLM_NO_PROVIDER.',
      ),
    params: z
      .record(z.string(), z.unknown())
      .default({})
      .describe("The experiment's parameters, read by agents as ctx.params (JSON values); an intervention can change them between ticks."),
    llmBudget: z
      .strictObject({
        callsPerTick: positiveInt.optional().describe('LLM calls one agent may make per tick.'),
        tokens: positive.optional().describe('Prompt + completion tokens one agent may spend over the run.'),
      })
      .prefault({})
      .describe('A per-agent LLM budget; a call past it fails with ERR_LLM_BUDGET.'),
    bus: z
      .union([z.literal('local'), z.string().regex(/^mqtts?:\/\//, 'an mqtt:// or mqtts:// URL'), z.literal('embedded'), BusSettingsSchema])
      .default('local')
      .describe("`'local'` (in-process, the default), `'embedded'` (the embedded MQTT broker), an MQTT URL, or bus options."),
    sink: z
      .union([
        z.strictObject({ archive: z.string().min(1).describe('Directory of the Avro archive.') }),
        z.strictObject({ postgres: z.string().min(1).describe('A postgres:// URL.'), schema: z.string().min(1).optional() }),
      ])
      .optional()
      .describe(
        'Where records go: `{ archive: dir }` or `{ postgres: url }`. Default: Postgres at `MYRIAD_DSN` when set, else the archive in `$MYRIAD_RUNS_DIR/<name>/<runId>/` (`./runs` by default).',
      ),
    clock: z
      .strictObject({
        mode: z.enum(['lockstep', 'async']).default('lockstep').describe('lockstep: a tick ends when all its turns end; async: no global barrier.'),
        tickMs: positive.default(60_000).describe('Simulated time per tick (ctx.now advances by it).'),
        start: z.number().optional().describe('Simulated time of tick 0, ms since the epoch (default: when run() starts).'),
      })
      .prefault({}),
    concurrency: z
      .strictObject({
        steps: positiveInt.default(1024).describe('Turns in flight at once.'),
        llm: positiveInt.optional().describe("LLM calls in flight at once (sets the LLM config's `concurrency` when the experiment makes the client)."),
      })
      .prefault({}),
    checkpoint: z
      .strictObject({
        every: positiveInt.describe('A checkpoint after every n-th tick (lockstep), written to dir/tick-<next tick>.'),
        dir: z.string().min(1).describe('Where the checkpoints go; Experiment.resume(dir, options) takes the newest.'),
        keep: positiveInt.default(2).describe('Checkpoints kept: older ones are removed once a newer one is whole.'),
      })
      .optional()
      .describe('Automatic checkpoints (see exp.checkpoint(path) for one on demand).'),
    groups: positiveInt.optional().describe('Agent groups: each has one bus connection (default: one per core).'),
    stepTimeoutMs: positive.default(30_000).describe('A turn running longer is aborted (ctx.signal) and recorded as ERR_STEP_TIMEOUT.'),
    maxConsecutiveFailures: positiveInt.default(3).describe('Failed turns in a row after which an agent is parked (no more turns).'),
    deliveryTimeoutMs: positive
      .default(60_000)
      .describe('How long a lockstep tick waits for the messages of the one before; what is missing then is counted as lost.'),
    matching: z
      .strictObject({
        embedder: EmbedderOptionsSchema.prefault({}),
        storage: z.enum(['f32', 'f16']).default('f16').describe('Storage of the specialty index.'),
        registry: RegistryOptionsSchema.prefault({}),
        policy: PolicyOptionsSchema.omit({ seed: true }).prefault({}),
      })
      .prefault({})
      .describe('The routing components that agents with a specialty use (findHelpers, memory).'),
  })
  .describe('new Experiment(options)')

export type ExperimentOptions = z.input<typeof ExperimentOptionsSchema>
export type ResolvedExperimentOptions = z.output<typeof ExperimentOptionsSchema>
