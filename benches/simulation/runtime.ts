// The workload on Myriad's runtime: `defineAgent` + `Experiment`, as a user writes it.
import { z } from 'zod'

import { Experiment, defineAgent } from '../../src/index.js'
import { type Config, QUERY, type Result, SHARES, gc, prompt, rssSampler, specialties } from './workload.js'

export async function runRuntime(c: Config): Promise<Result> {
  const texts = specialties(c.n)
  const shares = SHARES[c.workload]
  let finds = 0
  const Agent = defineAgent({
    name: 'a',
    profile: z.object({ s: z.number().int() }),
    state: { got: 0, sum: 0, llm: 0 },
    specialty: (p) => texts[p.s],
    step(ctx) {
      const inbox = ctx.inbox
      for (let i = 0; i < inbox.length; i++) ctx.state.sum += inbox[i].body as number
      ctx.state.got += inbox.length
      ctx.send(`a-${Math.floor(ctx.rand() * c.n)}`, ctx.tick)
      const r = ctx.rand()
      if (r < shares.llm) {
        return ctx.llm.chat({ messages: prompt(ctx.id), maxTokens: 16 }).then(() => {
          ctx.state.llm++
        })
      }
      if (r < shares.llm + shares.helpers) {
        return ctx.findHelpers(QUERY, { k: 5 }).then((found) => {
          finds += found.length > 0 ? 1 : 0
        })
      }
    },
  })
  const sampler = rssSampler()
  const heapBefore = (gc(), process.memoryUsage().heapUsed)
  let heapAfterSetup = 0
  const exp = new Experiment({
    name: 'bench-simulation',
    seed: 42,
    population: [{ agent: Agent, count: c.n, profiles: (i) => ({ s: i % texts.length }) }],
    llm: {
      providers: [{ name: 'bench', baseUrl: c.llmUrl, models: ['bench-model'], limits: { concurrency: c.concurrency, adaptive: false } }],
      concurrency: c.concurrency,
    },
    concurrency: { steps: Math.max(c.concurrency * 2, 1024) },
    matching: { embedder: { precision: 'int8' } },
    sink: { archive: c.dir },
  })
  const tickMs: number[] = []
  exp.on('tick', (info) => {
    tickMs.push(info.tickMs)
    if (info.tick === 0) {
      gc()
      heapAfterSetup = process.memoryUsage().heapUsed
    }
  })
  const summary = await exp.run({ ticks: c.ticks })
  sampler.stop()
  return {
    setup_s: summary.setupS,
    tick_ms: tickMs,
    turns: summary.turns,
    sent: summary.messages.sent,
    delivered: summary.messages.delivered,
    lost: summary.messages.lost,
    errors: summary.errors.count,
    llm_calls: summary.llm.calls,
    finds,
    rss_mb: sampler.peakMb(),
    heap_mb: heapAfterSetup / 2 ** 20,
    heap_bytes_per_agent: (heapAfterSetup - heapBefore) / c.n,
  }
}
