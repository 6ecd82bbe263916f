// The bench harness: CLI options, timing through tinybench, statistics, tables, the machine.
import { cpus, totalmem, platform, release } from 'node:os'

import { Bench } from 'tinybench'

import { mulberry32 } from '../devkit/math.js'
import { initRuntime, simdKernels } from '../index.js'

export interface Options {
  suite?: string
  extended: boolean
  quick: boolean
  n?: number[]
  iterations?: number
}

export type Row = Record<string, string | number | boolean | null>

export interface Suite {
  name: string
  /** What the suite reproduces or compares, one line for the report. */
  title: string
  run(opts: Options, progress: (msg: string) => void): Promise<Row[]>
  /** Column order for the markdown table (rows may carry more fields in the JSON). */
  columns: string[]
  /** Pass/fail lines against the targets (informational; never fail the run). */
  verdicts?(rows: Row[]): string[]
}

export function parseArgs(argv: string[]): Options {
  const opts: Options = { extended: false, quick: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--extended') opts.extended = true
    else if (a === '--quick') opts.quick = true
    else if (a === '--suite') opts.suite = argv[++i]
    else if (a === '--n') opts.n = argv[++i].split(',').map(Number)
    else if (a === '--iterations') opts.iterations = Number(argv[++i])
    else throw new Error(`unknown bench option ${a} (use --suite NAME, --extended, --quick, --n 10,50, --iterations K)`)
  }
  return opts
}

/** The seeded PRNG every suite uses (seed 42 unless a suite says otherwise). */
export const prng = (seed = 42) => mulberry32(seed)

export interface Stats {
  mean_ms: number
  std_ms: number
  p50_ms: number
  p99_ms: number
  samples: number
}

/** Runs `fn` `iterations` times (after a short warm-up) under tinybench and returns its latency. */
export async function measure(name: string, iterations: number, fn: () => Promise<unknown> | unknown): Promise<Stats> {
  const bench = new Bench({ iterations, time: 0, warmup: true, warmupIterations: Math.min(20, iterations), warmupTime: 0, throws: true })
  bench.add(name, fn)
  await bench.run()
  const result = bench.tasks[0].result
  if (!('latency' in result)) throw new Error(`${name}: tinybench finished without statistics (${result.state})`)
  const l = result.latency
  return { mean_ms: l.mean, std_ms: l.sd, p50_ms: l.p50, p99_ms: l.p99, samples: l.samplesCount }
}

export const round = (v: number, digits = 3) => Number(v.toFixed(digits))

export function markdownTable(columns: string[], rows: Row[]): string {
  const cell = (v: Row[string] | undefined) => (v === undefined || v === null ? '' : String(v))
  const lines = [`| ${columns.join(' | ')} |`, `|${columns.map(() => '---').join('|')}|`]
  for (const row of rows) lines.push(`| ${columns.map((c) => cell(row[c])).join(' | ')} |`)
  return lines.join('\n')
}

export function describeMachine() {
  const runtime = initRuntime()
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memory_gib: round(totalmem() / 2 ** 30, 1),
    os: `${platform()} ${release()}`,
    node: process.version,
    simd: simdKernels(),
    onnxruntime: runtime.version,
  }
}

export function progress(suite: string): (msg: string) => void {
  const t0 = performance.now()
  return (msg) => process.stderr.write(`[bench ${suite} +${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`)
}
