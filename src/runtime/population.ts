// The population as columns: one slot per agent in a few arrays (ids, type, profile, state,
// failure counters), not an object per agent. Built from the experiment's population entries,
// checking every profile before anything is written.
import type { AgentType } from '../agents/index.js'
import { MyriadError, invalidArg } from '../errors/index.js'
import { RandomStreams, stream } from './random.js'

/** Profiles of a population entry: an array, a function of (i, rand), or an (async) iterable. */
export type ProfileSource<P> = readonly P[] | ((i: number, rand: () => number) => P | Promise<P>) | Iterable<P> | AsyncIterable<P>

// biome-ignore lint/suspicious/noExplicitAny: a population mixes agent types of any profile and state.
export type AnyAgentType = AgentType<any, any, any>

export interface PopulationEntry<A extends AnyAgentType = AnyAgentType> {
  agent: A
  count: number
  profiles: ProfileSource<A extends AgentType<infer P, unknown, never> ? P : unknown>
  /** An agent's id (default `<agent name>-<i>`, i counted within this entry). */
  ids?: (i: number) => string
}

/** Consecutive failed turns before an agent is parked, by default. */
export const MAX_CONSECUTIVE_FAILURES = 3

export class Population {
  readonly types: AnyAgentType[] = []
  readonly ids: string[] = []
  /** Index into `types` per agent. */
  typeOf = new Uint16Array(0)
  readonly profiles: unknown[] = []
  readonly states: unknown[] = []
  /** Slots of the ids that are not `<name>-<i>` (those are read from the id itself, see `slotOf`). */
  private readonly customIds = new Map<string, number>()
  /** Consecutive failed turns per agent. */
  failures = new Uint8Array(0)
  /** 1 for an agent that takes no more turns. */
  parked = new Uint8Array(0)
  random!: RandomStreams
  /** Entries whose ids are the default `<name>-<i>`: their first slot and count, by name. */
  private readonly defaultIds = new Map<string, { first: number; count: number }>()

  get size(): number {
    return this.ids.length
  }

  /**
   * The slot of an id, or undefined. Default ids are read without the map: a lookup of a fresh
   * string in a map of a million entries costs more than the rest of sending a message.
   */
  slotOf(id: string): number | undefined {
    const dash = id.lastIndexOf('-')
    if (dash > 0) {
      const entry = this.defaultIds.get(id.slice(0, dash))
      if (entry) {
        const i = +id.slice(dash + 1)
        if (i >= 0 && i < entry.count && this.ids[entry.first + i] === id) return entry.first + i
      }
    }
    return this.customIds.get(id)
  }

  typeOfAgent(i: number): AnyAgentType {
    return this.types[this.typeOf[i]]
  }

  /**
   * Builds the population: ids, checked profiles, initial states. Throws before anything is
   * recorded: `ERR_AGENT_PROFILE` with the entry, index and zod issues for the first bad profile,
   * `ERR_INVALID_ARG` for duplicate agent names or ids and counts that are not whole numbers.
   */
  static async build(entries: readonly PopulationEntry[], seed: number, restored?: { profiles: unknown[]; states: unknown[] }): Promise<Population> {
    const pop = new Population()
    if (!Array.isArray(entries) || entries.length === 0) throw invalidArg('population must list at least one { agent, count, profiles } entry')
    const typeIndex = new Map<AnyAgentType, number>()
    const names = new Map<string, AnyAgentType>()
    for (const [e, entry] of entries.entries()) {
      const { agent, count } = entry ?? ({} as PopulationEntry)
      if (!agent || typeof agent.initialState !== 'function') throw invalidArg(`population[${e}].agent must be an agent type from defineAgent`)
      if (!Number.isInteger(count) || count < 0) throw invalidArg(`population[${e}].count must be a non-negative integer, got ${String(count)}`)
      const other = names.get(agent.name)
      if (other && other !== agent) throw invalidArg(`two agent types are named '${agent.name}' (population[${e}]); names must be unique`)
      names.set(agent.name, agent)
      if (!typeIndex.has(agent)) {
        typeIndex.set(agent, pop.types.length)
        pop.types.push(agent)
      }
    }
    const total = entries.reduce((n, e) => n + e.count, 0)
    pop.typeOf = new Uint16Array(total)
    pop.failures = new Uint8Array(total)
    pop.parked = new Uint8Array(total)
    const draw = stream(seed ^ 0x5bd1e995)
    if (restored) return Population.restore(pop, entries, typeIndex, total, seed, restored)
    for (const [e, entry] of entries.entries()) {
      const type = typeIndex.get(entry.agent) as number
      // Default ids of a type are one range (a second entry of the type without ids would repeat
      // them, and is refused below as a taken id).
      if (!entry.ids && !pop.defaultIds.has(entry.agent.name)) pop.defaultIds.set(entry.agent.name, { first: pop.ids.length, count: entry.count })
      let i = 0
      for await (const profile of profilesOf(entry, draw)) {
        if (i >= entry.count) break
        const parsed = entry.agent.profile.safeParse(profile)
        if (!parsed.success) {
          const issues = parsed.error.issues.map((x: { path: PropertyKey[]; message: string }) => `${x.path.join('.') || '(profile)'}: ${x.message}`).join('; ')
          throw new MyriadError('ERR_AGENT_PROFILE', `population[${e}] (${entry.agent.name}) profile ${i}: ${issues}`)
        }
        const id = entry.ids ? entry.ids(i) : `${entry.agent.name}-${i}`
        if (typeof id !== 'string' || id.length === 0) throw invalidArg(`population[${e}].ids(${i}) must return a non-empty string`)
        // `@cohort:<key>` names a cohort's LLM calls in llm_calls.
        if (id.startsWith('@')) throw invalidArg(`population[${e}].ids(${i}) is '${id}': ids starting with @ are reserved`)
        const slot = pop.ids.length
        if (pop.slotOf(id) !== undefined) throw invalidArg(`agent id '${id}' (population[${e}], ${i}) is already taken: ids must be unique in the experiment`)
        if (entry.ids) pop.customIds.set(id, slot)
        pop.ids.push(id)
        pop.typeOf[slot] = type
        pop.profiles.push(parsed.data)
        pop.states.push(entry.agent.initialState(parsed.data))
        i++
      }
      if (i < entry.count) throw invalidArg(`population[${e}] (${entry.agent.name}) asks for ${entry.count} agents but its profiles gave ${i}`)
    }
    pop.random = new RandomStreams(seed, total)
    return pop
  }

  /**
   * A resumed run's population: ids and types from the entries, profiles and states as the
   * checkpoint holds them (checked when they were first made), not drawn and parsed again.
   */
  private static restore(
    pop: Population,
    entries: readonly PopulationEntry[],
    typeIndex: Map<AnyAgentType, number>,
    total: number,
    seed: number,
    restored: { profiles: unknown[]; states: unknown[] },
  ): Population {
    if (restored.states.length !== total || restored.profiles.length !== total) {
      throw new MyriadError('ERR_CHECKPOINT_MISMATCH', `population: the checkpoint holds ${restored.states.length} agents, the options make ${total}`)
    }
    for (const [e, entry] of entries.entries()) {
      const type = typeIndex.get(entry.agent) as number
      if (!entry.ids && !pop.defaultIds.has(entry.agent.name)) pop.defaultIds.set(entry.agent.name, { first: pop.ids.length, count: entry.count })
      for (let i = 0; i < entry.count; i++) {
        const slot = pop.ids.length
        const id = entry.ids ? entry.ids(i) : `${entry.agent.name}-${i}`
        if (typeof id !== 'string' || id.length === 0 || id.startsWith('@'))
          throw invalidArg(`population[${e}].ids(${i}) must return a non-empty string not starting with @`)
        if (pop.slotOf(id) !== undefined) throw invalidArg(`agent id '${id}' (population[${e}], ${i}) is already taken: ids must be unique in the experiment`)
        if (entry.ids) pop.customIds.set(id, slot)
        pop.ids.push(id)
        pop.typeOf[slot] = type
        pop.profiles.push(restored.profiles[slot])
        pop.states.push(restored.states[slot])
      }
    }
    pop.random = new RandomStreams(seed, total)
    return pop
  }
}

async function* profilesOf(entry: PopulationEntry, draw: () => number): AsyncIterable<unknown> {
  const source = entry.profiles as unknown
  if (typeof source === 'function') {
    for (let i = 0; i < entry.count; i++) yield await (source as (i: number, rand: () => number) => unknown)(i, draw)
    return
  }
  if (
    source &&
    (typeof (source as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' || typeof (source as Iterable<unknown>)[Symbol.iterator] === 'function')
  ) {
    yield* source as AsyncIterable<unknown>
    return
  }
  throw invalidArg(`population entry '${entry.agent.name}': profiles must be an array, a function (i, rand) => profile or an iterable`)
}
