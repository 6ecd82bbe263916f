// The published figures the report sets Myriad's rows beside, copied from the seed documents
// (../shared/seeds/), with the hardware each was measured on as the documents state it.

/** Seed 002 (the MAMA stress study), "性能汇总表": per N, mean ± std where the study gives one. */
export const MAMA = {
  source: 'seed 002, the MAMA stress study: "性能汇总表" (performance summary), 30 repetitions, seed 42',
  hardware: 'Apple M-series chip, MPS (Metal Performance Shaders), unified memory, Python 3 + PyTorch 2.7.1, ThreadPoolExecutor',
  rows: [
    { n: 10, matchMs: [14.65, 16.31], registryPerS: 33_719.5, success: 1, marlMs: [0.214, 0.906] },
    { n: 50, matchMs: [16.72, 4.67], registryPerS: 63_167.6, success: 1, marlMs: [0.063, 0.034] },
    { n: 100, matchMs: [18.97, 9.45], registryPerS: 60_167.2, success: 1, marlMs: [0.053, 0.023] },
    { n: 500, matchMs: [21.13, 11.12], registryPerS: 68_335.5, success: 1, marlMs: [0.046, 0.005] },
    { n: 1000, matchMs: [20.24, 6.99], registryPerS: 69_250.7, success: 1, marlMs: [0.043, 0.003] },
    { n: 5000, matchMs: [26.36, 9.1], registryPerS: 61_559.5, success: 1, marlMs: [0.042, 0.003] },
  ],
} as const

/** Seed 001 (the async million-agent framework), its sync vs async table: one LLM call per agent. */
export const ASYNC_DOCUMENT = {
  source: 'seed 001, the asynchronous million-agent framework: its synchronous vs asynchronous table (one LLM call per agent, ~100 ms each)',
  hardware: 'not stated in the document',
  rows: [
    { agents: 100, syncS: 10.1, asyncS: 0.5, memory: '85 MB' },
    { agents: 500, syncS: 50.8, asyncS: 2.1, memory: '320 MB' },
    { agents: 1000, syncS: 101.2, asyncS: 3.8, memory: '580 MB' },
    { agents: 1_000_000, syncS: 27.8 * 3600, asyncS: 2.5 * 3600, memory: '~12 GB' },
  ],
} as const
