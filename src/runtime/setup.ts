// The routing components of a run, made when its agent types have specialties: the embedder, the
// specialty index (f16 by default), the registry with every such agent registered, and the policy.
// Specialty texts repeat across a large population, so the index holds each distinct text once
// (embedded once), and a row's agents are found through `RowAgents`: a million agents with 10,000
// specialties make an index of 10,000 rows, not a million.
import { join } from 'node:path'

import { MyriadError } from '../errors/index.js'
import { Embedder, SemanticIndex } from '../matching/index.js'
import { Policy } from '../policy/index.js'
import { Registry } from '../registry/index.js'
import type { ResolvedExperimentOptions } from './options.js'
import { PARTS } from './checkpoint-file.js'
import type { Population } from './population.js'
import { type RowAgents, Router } from './routing.js'

/** Distinct texts per embed call, and agents per registry batch, during setup. */
const EMBED_CHUNK = 256
const AGENT_CHUNK = 8192

function groupByRow(rows: Int32Array, count: number, slotsOf: number[]): RowAgents {
  const offsets = new Int32Array(count + 1)
  for (const row of rows) offsets[row + 1]++
  for (let r = 0; r < count; r++) offsets[r + 1] += offsets[r]
  const fill = offsets.slice(0, count)
  const slots = new Int32Array(rows.length)
  rows.forEach((row, j) => {
    slots[fill[row]++] = slotsOf[j]
  })
  return { offsets, slots }
}

export interface Matching {
  router: Router | undefined
  embedder(): Promise<Embedder>
  index: SemanticIndex | undefined
  registry: Registry | undefined
  policy: Policy | undefined
  /** Distinct specialty texts embedded at setup. */
  specialties: number
}

/** The embedder, loaded on first use and shared (memory needs it even without specialties). */
function lazyEmbedder(options: ResolvedExperimentOptions['matching']['embedder']): () => Promise<Embedder> {
  let loading: Promise<Embedder> | undefined
  return () => {
    loading ??= Embedder.load(options)
    return loading
  }
}

async function restoreMatching(from: string, model: Embedder): Promise<{ index: SemanticIndex; registry: Registry; policy: Policy }> {
  const [index, registry, policy] = await Promise.all([
    SemanticIndex.load(join(from, PARTS.index), { embedder: model }),
    Registry.load(join(from, PARTS.registry)),
    Policy.loadState(join(from, PARTS.policy)),
  ])
  return { index, registry, policy }
}

/** The agents with a specialty and their texts, checked before the run opens anything. */
export interface Specialties {
  slots: number[]
  texts: string[]
}

export function collectSpecialties(pop: Population): Specialties {
  const slots: number[] = []
  const texts: string[] = []
  for (let i = 0; i < pop.size; i++) {
    const specialty = pop.typeOfAgent(i).specialty
    if (!specialty) continue
    const text = specialty(pop.profiles[i])
    if (typeof text !== 'string' || text.length === 0 || text.length > 8192) {
      throw new MyriadError(
        'ERR_AGENT_PROFILE',
        `agent ${pop.ids[i]}: specialty(profile) must return a text of 1 to 8,192 characters, got ${typeof text === 'string' ? `${text.length} characters` : typeof text}`,
      )
    }
    slots.push(i)
    texts.push(text)
  }
  return { slots, texts }
}

/**
 * Sets up the routing components: embedded and registered afresh, or, resuming, as a checkpoint
 * in `from` saved them (the index, the registry with its trust ledger, the policy's whole state).
 */
export async function openMatching(pop: Population, specialties: Specialties, o: ResolvedExperimentOptions, exp: string, from?: string): Promise<Matching> {
  const embedder = lazyEmbedder(o.matching.embedder)
  const { slots: withSpecialty, texts } = specialties
  if (withSpecialty.length === 0) return { router: undefined, embedder, index: undefined, registry: undefined, policy: undefined, specialties: 0 }
  const model = await embedder()
  const restored = from === undefined ? undefined : await restoreMatching(from, model)
  const index = restored?.index ?? SemanticIndex.create({ embedder: model, storage: o.matching.storage })
  const registry = restored?.registry ?? Registry.create(o.matching.registry)
  const policy = restored?.policy ?? Policy.create({ ...o.matching.policy, seed: o.seed })
  // Each distinct text is one row of the index; its agents are a range of `agentsOf`.
  const rowOf = new Map<string, number>()
  const distinct: string[] = []
  const rows = new Int32Array(texts.length)
  texts.forEach((text, j) => {
    let row = rowOf.get(text)
    if (row === undefined) {
      row = distinct.length
      rowOf.set(text, row)
      distinct.push(text)
    }
    rows[j] = row
  })
  const groups = groupByRow(rows, distinct.length, withSpecialty)
  const window = o.matching.registry.window
  const router = new Router(model, index, registry, policy, exp, window, pop.ids, distinct, groups, o.seed)
  if (restored) return { router, embedder, index, registry, policy, specialties: distinct.length }
  for (let at = 0; at < distinct.length; at += EMBED_CHUNK) {
    const part = distinct.slice(at, at + EMBED_CHUNK)
    await index.upsert(
      part.map((_, j) => `s${at + j}`),
      part,
    )
  }
  const ts = o.clock.start ?? Date.now()
  for (let at = 0; at < withSpecialty.length; at += AGENT_CHUNK) {
    const ids = withSpecialty.slice(at, at + AGENT_CHUNK).map((s) => pop.ids[s])
    const results = await registry.process(
      ids.map((id, j) => ({ v: 1, type: 'register', msgId: `${exp}/register/${id}`, from: id, ts, body: { specialty: texts[at + j] } })),
    )
    const refused = results.find((r) => !r.ok)
    if (refused) throw new Error(`registering agents: ${refused.error?.code}: ${refused.error?.reason}`)
  }
  return {
    router,
    embedder,
    index,
    registry,
    policy,
    specialties: distinct.length,
  }
}
