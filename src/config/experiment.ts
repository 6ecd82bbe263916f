// From a loaded experiment file to `Experiment` options: the agents module is imported (TypeScript
// directly, through tsx: the user has no build step), its agent types are found by name, each
// population entry gets its profiles (an export, a JSON / JSON-lines file, or `{}`), and secrets
// referenced by file are read.
import { createReadStream, existsSync, readFileSync } from 'node:fs'
import { extname, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { pathToFileURL } from 'node:url'

import type { AgentType } from '../agents/index.js'
import { MyriadError } from '../errors/index.js'
import { type ExperimentOptions, type PopulationEntry, type ProfileSource, type ReplaySource, isDatabaseUrl } from '../runtime/index.js'
import type { LoadedConfig } from './load.js'

// biome-ignore lint/suspicious/noExplicitAny: a module's agent types have any profile and state.
type AnyAgent = AgentType<any, any, any>
type Exports = Record<string, unknown>

const isAgentType = (v: unknown): v is AnyAgent =>
  typeof v === 'object' && v !== null && typeof (v as AnyAgent).name === 'string' && typeof (v as AnyAgent).initialState === 'function'

let tsxRegistered = false

/** Imports the agents module: .ts / .mts / .cts through tsx, JavaScript as it is. */
export async function importAgentsModule(path: string): Promise<Exports> {
  if (!existsSync(path)) throw new MyriadError('ERR_AGENTS_MODULE', `the agents module ${path} does not exist`)
  try {
    // tsx's loader for the whole process, not its namespaced tsImport: that one loads a second copy
    // of every dependency (Myriad, undici, zod) beside the one this process has.
    if (/\.[mc]?tsx?$/.test(path) && !tsxRegistered) {
      ;(await import('tsx/esm/api')).register()
      tsxRegistered = true
    }
    return (await import(pathToFileURL(path).href)) as Exports
  } catch (e) {
    // Node's code when a .ts file it takes for CommonJS imports this (ESM) package.
    const commonJs = /^ERR_REQUIRE_CYCLE_MODULE$/.test(String((e as { code?: unknown })?.code))
    const hint = commonJs ? ' (Node takes it for CommonJS: name it .mts, or put "type": "module" in its package.json)' : ''
    throw new MyriadError('ERR_AGENTS_MODULE', `the agents module ${path} failed to load: ${e instanceof Error ? e.message : String(e)}${hint}`, { cause: e })
  }
}

/** The agent types a module exports, by name (named exports, and those of a default export object). */
export function agentTypesOf(exports: Exports, path: string): Map<string, AnyAgent> {
  const found = new Map<string, AnyAgent>()
  const add = (v: unknown) => {
    if (isAgentType(v)) found.set(v.name, v)
  }
  for (const v of Object.values(exports)) add(v)
  const fallback = exports.default
  if (fallback && typeof fallback === 'object') for (const v of Object.values(fallback)) add(v)
  if (found.size === 0) throw new MyriadError('ERR_AGENTS_MODULE', `the agents module ${path} exports no agent type (export the result of defineAgent)`)
  return found
}

async function* jsonLines(path: string): AsyncIterable<unknown> {
  let n = 0
  for await (const line of createInterface({ input: createReadStream(path), crlfDelay: Number.POSITIVE_INFINITY })) {
    n++
    if (line.trim() === '') continue
    try {
      yield JSON.parse(line)
    } catch (e) {
      throw new MyriadError('ERR_CONFIG', `${path}:${n}: not a JSON line (${e instanceof Error ? e.message : String(e)})`)
    }
  }
}

function profilesFor(spec: string | undefined, agent: string, exports: Exports, dir: string, modulePath: string): ProfileSource<unknown> {
  if (spec !== undefined && /\.jsonl?$/i.test(spec)) {
    const path = resolve(dir, spec)
    if (!existsSync(path)) throw new MyriadError('ERR_CONFIG', `the profiles file ${path} (population entry '${agent}') does not exist`)
    if (extname(path).toLowerCase() === '.jsonl') return jsonLines(path)
    const list = JSON.parse(readFileSync(path, 'utf8')) as unknown
    if (!Array.isArray(list)) throw new MyriadError('ERR_CONFIG', `the profiles file ${path} must hold a JSON array`)
    return list
  }
  if (spec !== undefined) {
    const source = exports[spec]
    if (source === undefined) throw new MyriadError('ERR_AGENTS_MODULE', `the agents module ${modulePath} has no export '${spec}' (the profiles of '${agent}')`)
    return source as ProfileSource<unknown>
  }
  const shared = exports.profiles
  if (typeof shared === 'function') return (i: number, rand: () => number) => (shared as (i: number, r: () => number, a: string) => unknown)(i, rand, agent)
  if (shared && typeof shared === 'object' && agent in shared) return (shared as Record<string, ProfileSource<unknown>>)[agent]
  return (): unknown => ({})
}

/** The `Experiment` options a loaded file describes, and the ticks to run. */
export async function experimentOptions(loaded: LoadedConfig): Promise<{ options: ExperimentOptions; ticks: number }> {
  const { config, dir } = loaded
  const modulePath = resolve(dir, config.agents.module)
  const exports = await importAgentsModule(modulePath)
  const types = agentTypesOf(exports, modulePath)
  const population: PopulationEntry[] = config.agents.population.map((entry) => {
    const agent = types.get(entry.agent)
    if (!agent) {
      throw new MyriadError(
        'ERR_AGENTS_MODULE',
        `agents.population: the agents module ${modulePath} exports no agent type '${entry.agent}' (it has: ${[...types.keys()].sort().join(', ')})`,
      )
    }
    return { agent, count: entry.count, profiles: profilesFor(entry.profiles, entry.agent, exports, dir, modulePath) }
  })
  const { ticks, ...run } = config.experiment
  let llm: ExperimentOptions['llm']
  let llmBudget: ExperimentOptions['llmBudget']
  if (config.llm) {
    const { agentBudget, providers, replay, ...client } = config.llm
    llmBudget = agentBudget
    llm = {
      ...client,
      providers: providers?.map(({ apiKeyFile, apiKey, ...p }) => ({
        ...p,
        apiKey: apiKeyFile ? readSecret(resolve(dir, apiKeyFile)) : apiKey || undefined,
      })),
      // A run directory is relative to the file, as every path in it.
      replay: relativeReplay(replay, dir),
    }
  }
  const options: ExperimentOptions = {
    ...run,
    population,
    llm,
    llmBudget,
    bus: config.bus,
    // Paths in the file are relative to it, not to where `myriad run` was started.
    sink: config.sink && 'archive' in config.sink ? { archive: resolve(dir, config.sink.archive) } : config.sink,
    clock: config.clock,
    concurrency: config.concurrency,
    matching: config.matching,
    checkpoint: config.checkpoint ? { ...config.checkpoint, dir: resolve(dir, config.checkpoint.dir) } : undefined,
  }
  return { options, ticks }
}

function relativeReplay(replay: ReplaySource | undefined, dir: string): ReplaySource | undefined {
  if (replay === undefined) return undefined
  const from = typeof replay === 'string' ? replay : replay.from
  if (isDatabaseUrl(from)) return replay
  return typeof replay === 'string' ? resolve(dir, from) : { ...replay, from: resolve(dir, from) }
}

function readSecret(path: string): string {
  if (!existsSync(path)) throw new MyriadError('ERR_CONFIG', `apiKeyFile ${path} does not exist`)
  return readFileSync(path, 'utf8').trim()
}
