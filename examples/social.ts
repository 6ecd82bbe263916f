// An OASIS-like network: users post to their followers, read their feed and like what they read,
// and find new people to follow through the semantic index of interests. Each tick 1% of users
// write a post with the LLM.
//   npx tsx examples/social.ts               (100,000 users, 5 ticks, the local test LLM)
//   MYRIAD_AGENTS=2000 MYRIAD_TICKS=3 npx tsx examples/social.ts
import { Experiment, defineAgent } from '@myriad-agents/core'
import { startLLMServer } from '@myriad-agents/core/testing'
import { z } from 'zod'

const TOPICS = [
  'jazz records',
  'mountain hiking',
  'street photography',
  'vegan recipes',
  'chess openings',
  'retro video games',
  'urban cycling',
  'astronomy',
  'indoor plants',
  'football tactics',
]

const User = defineAgent({
  name: 'user',
  profile: z.object({ handle: z.string(), topic: z.string(), follows: z.array(z.string()) }),
  // Followers learn of a follow by message; the initial graph is in the profiles.
  state: (p) => ({ following: p.follows, followers: [] as string[], posts: 0, read: 0, liked: 0 }),
  specialty: (p) => `posts about ${p.topic}`,
  messages: {
    post: z.object({ text: z.string(), topic: z.string() }),
    follow: z.object({}),
  },
  async step(ctx) {
    // Tick 0: every user tells the ones it follows, so they know their followers from tick 1 on.
    if (ctx.tick === 0) return ctx.sendMany(ctx.state.following.map((to) => ({ to, kind: 'follow' as const, body: {} })))
    const r = ctx.rand()
    if (r < 0.01) {
      const reply = await ctx.llm.chat({ messages: [{ role: 'user', content: `Write a short post about ${ctx.profile.topic}.` }], maxTokens: 48 })
      ctx.state.posts++
      await ctx.sendMany(ctx.state.followers.map((to) => ({ to, kind: 'post' as const, body: { text: reply.text, topic: ctx.profile.topic } })))
    } else if (r < 0.011) {
      const [found] = await ctx.findHelpers(`posts about ${ctx.profile.topic}`, { k: 3 })
      if (found && !ctx.state.following.includes(found.id)) {
        ctx.state.following.push(found.id)
        await ctx.send(found.id, {}, { kind: 'follow' })
      }
    }
  },
  on: {
    post(ctx, message) {
      ctx.state.read++
      if (message.body.topic === ctx.profile.topic || ctx.rand() < 0.1) ctx.state.liked++
    },
    follow(ctx, message) {
      if (!ctx.state.followers.includes(message.from)) ctx.state.followers.push(message.from)
    },
  },
})

const users = Number(process.env.MYRIAD_AGENTS ?? 100_000)
const ticks = Number(process.env.MYRIAD_TICKS ?? 5)
const server = process.env.MYRIAD_LLM_URL ? undefined : await startLLMServer({ latency: { fixedMs: 100 } })
const baseUrl = process.env.MYRIAD_LLM_URL ?? server?.url ?? ''

const exp = new Experiment({
  name: 'social',
  seed: 11,
  population: [
    {
      agent: User,
      count: users,
      // Everyone starts following a few users of the same topic.
      profiles: (i) => ({
        handle: `@user${i}`,
        topic: TOPICS[i % TOPICS.length],
        follows: [1, 2, 3].map((k) => `user-${(i + k * TOPICS.length) % users}`),
      }),
    },
  ],
  llm: { providers: [{ name: 'llm', baseUrl, models: [process.env.MYRIAD_LLM_MODEL ?? 'test-model'], apiKey: process.env.MYRIAD_LLM_KEY }], concurrency: 256 },
})

exp.on('tick', (t) => console.log(`tick ${t.tick}: ${t.turns} turns, ${t.messages.sent} messages, ${t.llmCalls} LLM calls, ${t.tickMs.toFixed(0)} ms`))
const summary = await exp.run({ ticks })
await server?.close()

const states = exp.states('user').map((s) => s.state as { posts: number; read: number; liked: number })
const sum = (key: 'posts' | 'read' | 'liked') => states.reduce((n, s) => n + s[key], 0)
console.log(
  `${sum('posts')} posts, ${sum('read')} read, ${sum('liked')} liked; ${summary.messages.delivered} messages delivered, ${summary.messages.failed} failed`,
)
console.log(`${summary.turns} turns in ${summary.wallS.toFixed(1)} s (setup ${summary.setupS.toFixed(1)} s); records:`, summary.records)
