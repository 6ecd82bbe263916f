// The MAMA scenario as a simulation: citizens with specialties ask each other for help. Each tick
// some have a question; findHelpers routes it (embed, top-k over specialties, registry, policy);
// the helper answers with the LLM; the asker gives feedback, and trust and the policy learn.
//   npx tsx examples/mutual-aid.ts            (10,000 citizens, 10 ticks, the local test LLM)
//   MYRIAD_AGENTS=1000 MYRIAD_TICKS=5 MYRIAD_LLM_URL=http://127.0.0.1:8080/v1 npx tsx examples/mutual-aid.ts
//   MYRIAD_REPLAY=runs/mutual-aid/<runId> npx tsx examples/mutual-aid.ts   (answers from that run's LLM calls)
import { Experiment, defineAgent } from '@myriad-agents/core'
import { startLLMServer } from '@myriad-agents/core/testing'
import { z } from 'zod'

const DOMAINS = [
  ['tax', 'personal income tax, deductions and tax returns', 'How do I claim deductions on my tax return?'],
  ['law', 'tenancy disputes, rental contracts and evictions', 'My landlord wants to evict me, what are my rights?'],
  ['health', 'family medicine, colds, fevers and vaccinations', 'My child has a fever, when should I see a doctor?'],
  ['cooking', 'home cooking, baking bread and meal planning', 'How do I bake bread without a bread machine?'],
  ['code', 'software engineering, debugging and databases', 'Why does my database query get slower every day?'],
  ['garden', 'vegetable gardens, soil, pests and watering', 'What is eating the leaves of my tomato plants?'],
  ['cars', 'car repair, engines, brakes and tyres', 'My brakes squeal when I stop, is that dangerous?'],
  ['money', 'budgeting, savings, loans and mortgages', 'Should I pay off my loan early or save the money?'],
] as const

const Citizen = defineAgent({
  name: 'citizen',
  profile: z.object({
    name: z.string(),
    age: z.number().int().min(16),
    domain: z.enum(DOMAINS.map((d) => d[0]) as [string, ...string[]]),
    years: z.number().int(),
  }),
  state: { asked: 0, answered: 0, helped: 0, failed: 0, waiting: {} as Record<string, string> },
  specialty: (p) => `${p.years} years of experience in ${DOMAINS.find((d) => d[0] === p.domain)?.[1]}`,
  messages: {
    question: z.object({ text: z.string(), domain: z.string() }),
    answer: z.object({ text: z.string(), domain: z.string() }),
  },
  async step(ctx) {
    if (ctx.rand() >= 0.01) return
    const [domain, , text] = DOMAINS[Math.floor(ctx.rand() * DOMAINS.length)]
    const started = performance.now()
    const [helper] = await ctx.findHelpers(text, { k: 5 })
    ctx.record('routing_ms', performance.now() - started)
    if (!helper) return
    ctx.state.asked++
    ctx.state.waiting[helper.id] = domain
    await ctx.send(helper.id, { text, domain }, { kind: 'question' })
  },
  on: {
    async question(ctx, message) {
      const reply = await ctx.llm.chat({ messages: [{ role: 'user', content: message.body.text }], maxTokens: 64 })
      ctx.state.answered++
      await ctx.send(message.from, { text: reply.text, domain: ctx.profile.domain }, { kind: 'answer' })
    },
    answer(ctx, message) {
      // The simulation knows the truth: an answer helps when it comes from the question's domain.
      const success = ctx.state.waiting[message.from] === message.body.domain && message.body.text.length > 0
      delete ctx.state.waiting[message.from]
      ctx.feedback(message.from, { success })
      if (success) ctx.state.helped++
      else ctx.state.failed++
    },
  },
})

const agents = Number(process.env.MYRIAD_AGENTS ?? 10_000)
const ticks = Number(process.env.MYRIAD_TICKS ?? 10)
const replay = process.env.MYRIAD_REPLAY
const server = process.env.MYRIAD_LLM_URL || replay ? undefined : await startLLMServer({ latency: { fixedMs: 100 } })
const baseUrl = process.env.MYRIAD_LLM_URL ?? server?.url ?? ''
const names = ['Ada', 'Ben', 'Cleo', 'Dan', 'Eve', 'Fay', 'Gus', 'Hal', 'Ivy', 'Jo']

const exp = new Experiment({
  name: 'mutual-aid',
  seed: 42,
  population: [
    {
      agent: Citizen,
      count: agents,
      profiles: (i, rand) => ({
        name: `${names[i % names.length]} ${i}`,
        age: 18 + Math.floor(rand() * 60),
        domain: DOMAINS[i % DOMAINS.length][0],
        years: 1 + (i % 10),
      }),
    },
  ],
  llm: replay
    ? { replay }
    : { providers: [{ name: 'llm', baseUrl, models: [process.env.MYRIAD_LLM_MODEL ?? 'test-model'], apiKey: process.env.MYRIAD_LLM_KEY }] },
  // A fixed start: simulated time, and so every record, is the same in each run of the seed.
  clock: { mode: 'lockstep', tickMs: 60_000, start: Date.UTC(2026, 0, 1) },
})

exp.on('tick', (t) =>
  console.log(
    `tick ${t.tick}: ${t.turns} turns, ${t.messages.sent} messages, ${t.llmCalls} LLM calls (p50 ${t.llmP50Ms.toFixed(0)} ms), ${t.tickMs.toFixed(0)} ms`,
  ),
)
const summary = await exp.run({ ticks })
await server?.close()

const states = exp.states('citizen').map((s) => s.state as { helped: number; failed: number })
const helped = states.reduce((n, s) => n + s.helped, 0)
const judged = helped + states.reduce((n, s) => n + s.failed, 0)
console.log(`success rate ${judged ? ((100 * helped) / judged).toFixed(1) : '-'}% of ${judged} answers; routing: ${JSON.stringify(summary.routing)}`)
console.log(`${summary.turns} turns in ${summary.wallS.toFixed(1)} s (setup ${summary.setupS.toFixed(1)} s); records:`, summary.records)
