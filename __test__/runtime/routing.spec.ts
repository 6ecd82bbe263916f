// findHelpers + feedback on the real model: specialties are embedded, the top-k goes through the
// registry and the policy; feedback moves trust in the registry's ledger and the policy learns.
import test from 'ava'
import { z } from 'zod'

import { Experiment, Policy, buildState, defineAgent } from '../../src/index.js'
import { archiveDir, cleanup, recorded } from './helpers.js'

const SPECIALTIES = {
  tax: 'Certified accountant: personal income tax, deductions and tax returns',
  law: 'Lawyer for tenancy disputes, rental contracts and evictions',
}

test('findHelpers finds agents by specialty; feedback raises trust of good helpers, lowers it for bad ones, and the policy learns', async (t) => {
  const dir = archiveDir('routing')
  // Askers ask a tax question every tick and tell the registry whether the helper was a tax expert.
  const Asker = defineAgent({
    name: 'asker',
    profile: z.object({}),
    state: { asked: 0, found: [] as string[] },
    async step(ctx) {
      const helpers = await ctx.findHelpers('How do I claim deductions on my tax return?', { k: 4, available: false })
      ctx.state.asked++
      for (const h of helpers) {
        ctx.state.found.push(h.id)
        ctx.feedback(h.id, { success: h.specialty === SPECIALTIES.tax, latencyMs: 100 })
      }
    },
  })
  const Expert = defineAgent({ name: 'expert', profile: z.object({ field: z.enum(['tax', 'law']) }), state: {}, specialty: (p) => SPECIALTIES[p.field] })
  const exp = new Experiment({
    name: 'routing',
    seed: 5,
    population: [
      { agent: Asker, count: 20, profiles: () => ({}) },
      { agent: Expert, count: 4, profiles: (i) => ({ field: i < 2 ? ('tax' as const) : ('law' as const) }) },
    ],
    sink: { archive: dir },
  })
  const summary = await exp.run({ ticks: 3 })
  t.is(summary.errors.count, 0, JSON.stringify(summary.errors.first))
  t.is(summary.routing?.asks, 60)
  // 20 asks per tick in one pass: batched into one embed + search + policy call (or a few).
  t.true((summary.routing?.batches ?? 99) <= 6, `batches ${summary.routing?.batches}`)
  t.is(summary.routing?.feedback, 240)
  t.is(summary.routing?.updates, 3)
  const states = exp.states('asker').map((s) => s.state as { found: string[] })
  // The two tax experts are the best matches, so they come back among the top 4 every time.
  t.true(states.every((s) => s.found.includes('expert-0') && s.found.includes('expert-1')))
  const registry = exp.registry
  if (!registry) return t.fail('no registry')
  const trust = (id: string) => registry.get(id)?.trust ?? Number.NaN
  t.true(trust('expert-0') > 0.9, `expert-0 ${trust('expert-0')}`)
  t.true(trust('expert-2') < 0.1, `expert-2 ${trust('expert-2')}`)
  // The policy took three learning steps: its decisions are no longer those of its initial weights.
  const probe = buildState({ queryTokens: 12, candidates: [0.6, 0.5, 0.4, 0.3].map((similarity) => ({ similarity, trust: 0.5, load: 0, capacity: 1 })) }).state
  const learnt = exp.policy?.decide(probe).probs
  const initial = Policy.create({ seed: 5 }).decide(probe).probs
  t.notDeepEqual([...(learnt ?? [])], [...initial])
  const agents = await recorded(summary, 'agents')
  t.is(agents.length, 24)
  cleanup(dir)
})
