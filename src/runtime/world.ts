// Interventions: `exp.at(tick, (world) => ...)` and `exp.every(n, ...)` run at the start of a tick,
// before its turns. `world` changes the population (states, profiles, removing agents), sends to
// it, or swaps the LLM and the experiment's parameters. Every change checks all its input before it
// changes anything, and is one `events` row (tick, kind, what, who), so a run's records tell what
// happened when.
import { z } from 'zod'

import { BUILTIN_KINDS } from '../agents/index.js'
import { MyriadError, invalidArg } from '../errors/index.js'
import { LLM, type LLMConfigSchema } from '../llm/index.js'
import type { Run } from './run.js'
import { type AgentView, EXPERIMENTER, viewOf } from './surveys.js'

/** Which agents: an id, a list of ids, or a filter on the agent. */
export type Who = string | readonly string[] | ((agent: AgentView) => boolean)

/** Ids a `who` column lists before it only counts them. */
const IDS_RECORDED = 100

export type Intervention = (world: World) => void | Promise<void>

/** What the run's services give the world (see Experiment). */
export interface WorldHost {
  run: Run
  /** Swaps the LLM the agents call; the experiment closes one it made when the run ends. */
  setLLM(llm: LLM): void
  params: Record<string, unknown>
}

export class World {
  private broadcasts = 0

  constructor(
    private readonly host: WorldHost,
    readonly tick: number,
    readonly now: number,
  ) {}

  private get run(): Run {
    return this.host.run
  }

  /** The experiment's parameters as the agents read them (`ctx.params`). */
  get params(): Readonly<Record<string, unknown>> {
    return this.host.params
  }

  /** The ids of the agents `who` names (parked ones included), in population order. */
  agents(who?: Who): string[] {
    return Array.from(this.slots(who ?? (() => true)), (s) => this.run.pop.ids[s])
  }

  /** One agent as it is now, or undefined for an id that is not an agent. */
  get(id: string): AgentView | undefined {
    const slot = this.run.pop.slotOf(id)
    return slot === undefined ? undefined : viewOf(this.run.pop, slot)
  }

  /** Sets the state of the agents `who` names: a value (copied per agent) or a function of the old state. Returns how many. */
  setState(who: Who, next: unknown | ((state: unknown, agent: AgentView) => unknown)): number {
    const pop = this.run.pop
    const slots = this.slots(who)
    const states = slots.map((s) => {
      const state = typeof next === 'function' ? (next as (s: unknown, a: AgentView) => unknown)(pop.states[s], viewOf(pop, s)) : structuredClone(next)
      if (JSON.stringify(state) === undefined) throw invalidArg(`setState: the state for ${pop.ids[s]} is not JSON-serialisable`)
      return state
    })
    slots.forEach((s, i) => {
      pop.states[s] = states[i]
      this.run.recordState(s, this.tick, this.now, true)
    })
    this.event('set-state', { state: typeof next === 'function' ? `(a function: ${next.name || 'anonymous'})` : next }, slots)
    return slots.length
  }

  /**
   * Changes the profiles of the agents `who` names: fields merged in, or a function of the old
   * profile. Every new profile is checked against its agent type's schema before any is changed
   * (`ERR_AGENT_PROFILE`). Each change is a new `agents` row.
   */
  setProfile(who: Who, change: Record<string, unknown> | ((profile: unknown, agent: AgentView) => unknown)): number {
    const pop = this.run.pop
    const slots = this.slots(who)
    const profiles = slots.map((s) => {
      const type = pop.typeOfAgent(s)
      const proposed = typeof change === 'function' ? change(pop.profiles[s], viewOf(pop, s)) : { ...(pop.profiles[s] as object), ...change }
      const parsed = type.profile.safeParse(proposed)
      if (!parsed.success) {
        const issues = parsed.error.issues.map((x: { path: PropertyKey[]; message: string }) => `${x.path.join('.') || '(profile)'}: ${x.message}`).join('; ')
        throw new MyriadError('ERR_AGENT_PROFILE', `setProfile: the new profile of ${pop.ids[s]} (${type.name}) does not fit its schema: ${issues}`)
      }
      return parsed.data
    })
    slots.forEach((s, i) => {
      pop.profiles[s] = profiles[i]
      this.run.recorder.add('agents', {
        exp_id: this.run.exp,
        agent_id: pop.ids[s],
        ts: this.now,
        tick: this.tick,
        profile: { type: pop.typeOfAgent(s).name, ...(profiles[i] as object) },
      })
    })
    this.event('set-profile', { change: typeof change === 'function' ? `(a function: ${change.name || 'anonymous'})` : change }, slots)
    return slots.length
  }

  /** Removes agents: they are parked (no more turns; messages to them are failed deliveries). Returns how many were not parked yet. */
  remove(who: Who): number {
    const slots = this.slots(who).filter((s) => !this.run.pop.parked[s])
    for (const s of slots) this.run.park(s, this.tick, this.now, 'an intervention removed it')
    this.event('remove', {}, slots)
    return slots.length
  }

  /**
   * Sends `body` on `kind` to the agents `who` names (default: all), in this tick's inboxes after
   * their agents' messages. One of the agent's own kinds is checked against each receiver type's
   * schema first (`ERR_MESSAGE_SCHEMA`); parked agents are left out. Returns how many got it.
   */
  broadcast(kind: string, body: unknown, options?: { to?: Who }): number {
    const pop = this.run.pop
    const slots = this.slots(options?.to ?? (() => true)).filter((s) => !pop.parked[s])
    const builtin = (BUILTIN_KINDS as readonly string[]).includes(kind)
    const checked = new Map<number, unknown>()
    for (const s of slots) {
      const type = pop.typeOf[s]
      if (builtin || checked.has(type)) continue
      const schema = pop.types[type].messages[kind] as z.ZodType | undefined
      if (!schema) throw new MyriadError('ERR_MESSAGE_SCHEMA', `broadcast: agent type '${pop.types[type].name}' does not declare the kind '${kind}'`)
      const parsed = schema.safeParse(body)
      if (!parsed.success)
        throw new MyriadError(
          'ERR_MESSAGE_SCHEMA',
          `broadcast: the '${kind}' body does not fit ${pop.types[type].name}'s schema: ${z.prettifyError(parsed.error)}`,
        )
      checked.set(type, parsed.data)
    }
    const n = this.broadcasts++
    const mailbox = this.run.services.mailbox
    for (const s of slots) {
      const msgId = mailbox.messageId(pop.size + 2, this.tick, n * pop.size + s)
      mailbox.file(this.tick, s, kind, builtin ? body : checked.get(pop.typeOf[s]), { from: EXPERIMENTER, msgId })
    }
    this.event('broadcast', { kind, body }, slots)
    return slots.length
  }

  /** Swaps the LLM the agents call from this tick on: an `LLM` client or its configuration. */
  setLLM(llm: LLM | z.input<typeof LLMConfigSchema>): void {
    const client = llm instanceof LLM ? llm : new LLM(llm)
    this.host.setLLM(client)
    this.event('set-llm', { providers: Object.keys(client.metrics().providers) }, [])
  }

  /** Sets one of the experiment's parameters (`ctx.params[name]`); JSON-serialisable. */
  setParam(name: string, value: unknown): void {
    if (typeof name !== 'string' || name.length === 0) throw invalidArg('setParam(name, value): name must be a non-empty string')
    if (JSON.stringify(value) === undefined) throw invalidArg(`setParam('${name}', value): the value must be JSON-serialisable`)
    const before = this.host.params[name]
    this.host.params = Object.freeze({ ...this.host.params, [name]: structuredClone(value) })
    this.event('set-param', { name, value, before: before ?? null }, [])
  }

  /** The slots `who` names, in population order; an id that is not an agent is `ERR_UNKNOWN_AGENT`. */
  private slots(who: Who): number[] {
    const pop = this.run.pop
    if (typeof who === 'function') {
      const out: number[] = []
      for (let s = 0; s < pop.size; s++) if (who(viewOf(pop, s))) out.push(s)
      return out
    }
    const ids = typeof who === 'string' ? [who] : who
    if (!Array.isArray(ids)) throw invalidArg('who must be an id, an array of ids, or a function of the agent')
    const slots = ids.map((id) => {
      const slot = typeof id === 'string' ? pop.slotOf(id) : undefined
      if (slot === undefined) throw new MyriadError('ERR_UNKNOWN_AGENT', `'${String(id)}' is not an agent of this experiment`)
      return slot
    })
    return [...new Set(slots)].sort((a, b) => a - b)
  }

  private event(kind: string, what: unknown, slots: readonly number[]): void {
    const who = whoColumn(
      slots.slice(0, IDS_RECORDED).map((s) => this.run.pop.ids[s]),
      slots.length,
    )
    this.run.recorder.add('events', { exp_id: this.run.exp, ts: this.now, tick: this.tick, kind, what: what ?? null, who })
  }
}

/** The `who` of an `events` row: how many agents, and the first of their ids. */
export function whoColumn(ids: readonly string[], count: number): { count: number; ids: string[]; truncated?: true } | null {
  if (count === 0) return null
  const listed = ids.slice(0, IDS_RECORDED)
  return { count, ids: listed, ...(count > listed.length ? { truncated: true as const } : {}) }
}
