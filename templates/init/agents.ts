// Citizens ask for help: findHelpers routes a question (embedding, top-k, registry, policy), the
// helper answers with the LLM, the asker's feedback teaches trust and the policy. myriad run
import { defineAgent, z } from '@myriad-agents/core'

const TOPICS = ['income tax returns', 'tenancy law', 'family medicine', 'home cooking', 'car repair'] as const

export const citizen = defineAgent({
  name: 'citizen',
  profile: z.object({ topic: z.enum(TOPICS), years: z.number().int().min(0) }),
  state: { asked: 0, answered: 0, helped: 0 },
  specialty: (p) => `${p.years} years of experience in ${p.topic}`,
  messages: { question: z.object({ text: z.string() }), answer: z.object({ text: z.string() }) },
  async step(ctx) {
    if (ctx.rand() >= 0.1) return // one in ten asks this tick
    const topic = TOPICS[Math.floor(ctx.rand() * TOPICS.length)]
    const [helper] = await ctx.findHelpers(`I need help with ${topic}`, { k: 3 })
    if (!helper) return
    ctx.state.asked++
    await ctx.send(helper.id, { text: `A question about ${topic}` }, { kind: 'question' })
  },
  on: {
    async question(ctx, { from, body }) {
      const reply = await ctx.llm.chat({ messages: [{ role: 'user', content: body.text }], maxTokens: 32 })
      ctx.state.answered++
      await ctx.send(from, { text: reply.text }, { kind: 'answer' })
    },
    answer(ctx, { from, body }) {
      ctx.feedback(from, { success: body.text.length > 0 })
      ctx.state.helped++
    },
  },
})

/** The profiles (`profiles: citizens` in experiment.yaml): one per agent index. */
export const citizens = (i: number, rand: () => number) => ({ topic: TOPICS[i % TOPICS.length], years: Math.floor(rand() * 30) })
