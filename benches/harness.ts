// The bench harness: CLI options, the context a suite runs in, timing through tinybench,
// statistics, markdown tables, the machine description.
//
// A suite is one module exporting a `Suite`: `run(ctx)` returns its rows (plain JSON objects, one
// per measured configuration); `columns` (or `render`) turns them into the markdown table;
// `verdicts` turns them into PASS/MISS lines against the targets. Register it in run.ts.
import { readFileSync } from 'node:fs'
import { cpus, platform, release, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'

import { Bench } from 'tinybench'

import { mulberry32 } from '../src/testing/math.js'
import { initRuntime, simdKernels } from '../src/index.js'

/** The package root (results and caches live under its bench/ whatever the working directory). */
export const ROOT = fileURLToPath(new URL('..', import.meta.url))

export interface Options {
  suite?: string
  extended: boolean
  quick: boolean
  n?: number[]
  iterations?: number
}

export type Cell = string | number | boolean | null
export type Row = Record<string, Cell>

/** What a suite gets: the options, a progress line writer, seeded randomness, report notes. */
export interface Context {
  opts: Options
  /** One progress line on stderr, prefixed with the suite and the elapsed time. */
  progress(msg: string): void
  /** A seeded PRNG (mulberry32) in [0, 1); seed 42 unless a suite needs a second stream. */
  rand(seed?: number): () => number
  /** A line printed under the suite's table and kept in the JSON (sanity checks, caveats). */
  note(line: string): void
}

export interface Column {
  key: string
  label?: string
  /** Cell text; default: numbers with thousands separators, null/undefined as blank. */
  format?(row: Row): string
}

export interface Suite {
  name: string
  /** What the suite reproduces or compares, one line for the report. */
  title: string
  run(ctx: Context): Promise<Row[]>
  /** The markdown table's columns (rows may carry more fields in the JSON). */
  columns: (string | Column)[]
  /** Pass/fail lines against the targets (informational; never fail the run). */
  verdicts?(rows: Row[]): string[]
}

export const USAGE = `usage: run.ts [--suite NAME] [--extended] [--quick] [--n 10,50] [--iterations K]
  --suite NAME     run one suite; its rows replace that suite's in bench/results/latest.json, others are kept
  --extended       add N = 10,000, 100,000 and 1,000,000 (matching, scan)
  --quick          CI smoke run: few N, few iterations (well under 2 minutes)
  --n 10,50        these N instead of the suite's list
  --iterations K   repetitions per measurement (matching: rounds over the queries; scan, policy: calls; registry: rounds)`

export function parseArgs(argv: string[]): Options {
  const opts: Options = { extended: false, quick: false }
  const value = (i: number, flag: string) => {
    const v = argv[i]
    if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value\n${USAGE}`)
    return v
  }
  const positiveInt = (s: string, flag: string) => {
    const v = Number(s.replace(/_/g, ''))
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${flag}: '${s}' is not a positive integer`)
    return v
  }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--extended') opts.extended = true
    else if (a === '--quick') opts.quick = true
    else if (a === '--suite') opts.suite = value(++i, a)
    else if (a === '--n')
      opts.n = value(++i, a)
        .split(',')
        .map((s) => positiveInt(s.trim(), '--n'))
    else if (a === '--iterations') opts.iterations = positiveInt(value(++i, a), a)
    else throw new Error(`unknown option ${a}\n${USAGE}`)
  }
  return opts
}

/** The seeded PRNG every suite uses (seed 42 unless a suite says otherwise). */
export const prng = (seed = 42) => mulberry32(seed)

/** A UUID-shaped id from a seeded stream (ids are UUIDs in practice; these repeat run to run). */
export function seededUuid(rand: () => number): string {
  const hex = (digits: number) =>
    Math.floor(rand() * 16 ** digits)
      .toString(16)
      .padStart(digits, '0')
  return `${hex(8)}-${hex(4)}-4${hex(3)}-${'89ab'[Math.floor(rand() * 4)]}${hex(3)}-${hex(6)}${hex(6)}`
}

export interface Stats {
  mean_ms: number
  std_ms: number
  p50_ms: number
  p99_ms: number
  samples: number
}

/** Linear-interpolated quantile of ascending samples (tinybench's definition). */
function quantile(sorted: number[], q: number): number {
  const pos = (sorted.length - 1) * q
  const lo = Math.floor(pos)
  const hi = Math.ceil(pos)
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo)
}

export function statsOf(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b)
  const n = sorted.length
  const mean = sorted.reduce((s, v) => s + v, 0) / n
  const variance = n > 1 ? sorted.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : 0
  return { mean_ms: mean, std_ms: Math.sqrt(variance), p50_ms: quantile(sorted, 0.5), p99_ms: quantile(sorted, 0.99), samples: n }
}

/** One tinybench run of `fn`: `iterations` timed calls (awaited) after `warmup` untimed ones. */
async function samplesOf(name: string, iterations: number, warmup: number, fn: () => unknown): Promise<number[]> {
  const bench = new Bench({
    iterations,
    time: 0,
    warmup: warmup > 0,
    warmupIterations: warmup,
    warmupTime: 0,
    retainSamples: true,
    throws: true,
  })
  bench.add(name, fn)
  await bench.run()
  const result = bench.tasks[0].result
  if (!('latency' in result) || !result.latency.samples) throw new Error(`${name}: tinybench finished without samples (${result.state})`)
  return [...result.latency.samples]
}

/** Runs `fn` `iterations` times (after a short warm-up) under tinybench and returns its latency. */
export async function measure(name: string, iterations: number, fn: () => unknown): Promise<Stats> {
  return statsOf(await samplesOf(name, iterations, Math.min(20, iterations), fn))
}

export interface TimedTask {
  name: string
  fn: () => unknown
  /** Timed calls per round. */
  iterations: number
  /** Untimed calls before each round's timed ones (default: `iterations`, at least 20). */
  warmup?: number
}

/**
 * Measures tasks that are to be compared side by side in rounds — A, B, C, A, B, C, ... — so that
 * a slow stretch of a shared machine lands on all of them rather than on one. Each task's samples
 * are pooled over the rounds; stats are computed on the pool.
 *
 * Every round starts with untimed warm-up calls: right after another ONNX Runtime session ran, the
 * next one is slow for ~10 calls (measured 3-14 ms instead of 2 ms: the other session's pool still
 * spinning, caches holding the other copy of the weights), which is the switch, not the task.
 * And a forced collection before each turn: otherwise the garbage one task leaves (the
 * transformers.js peer makes plenty) is collected during the next task's timed calls.
 */
export async function measureRounds(tasks: TimedTask[], rounds: number): Promise<Stats[]> {
  const pools: number[][] = tasks.map(() => [])
  for (let r = 0; r < rounds; r++) {
    for (const [t, task] of tasks.entries()) {
      collectGarbage()
      pools[t].push(...(await samplesOf(task.name, task.iterations, task.warmup ?? Math.max(task.iterations, 20), task.fn)))
    }
  }
  return pools.map(statsOf)
}

export const round = (v: number, digits = 3) => Number(v.toFixed(digits))

export type Call = (i: number) => Promise<unknown>

/** `calls` calls through `workers` loops of await-one-then-next; returns the most ever in flight. */
export async function workerLoops(calls: number, workers: number, call: Call): Promise<number> {
  let next = 0
  let inflight = 0
  let peak = 0
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (next < calls) {
        const i = next++
        if (++inflight > peak) peak = inflight
        await call(i)
        inflight--
      }
    }),
  )
  return peak
}

/** Frees what the previous configuration left (needs `node --expose-gc`, which npm run bench passes). */
/**
 * CPU time of the JS main thread in microseconds (user + system): /proc/self/task/<pid>/stat on
 * Linux (10 ms ticks, fine for runs of seconds); elsewhere process.cpuUsage, which also counts the
 * Rust threads and so flatters the peers.
 */
export function mainThreadCpuUs(): number {
  if (process.platform === 'linux') {
    try {
      const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      // Fields 14 and 15 of stat (utime, stime) in clock ticks; 100 per second on Linux.
      return ((Number(fields[11]) + Number(fields[12])) * 1e6) / 100
    } catch {
      // fall through
    }
  }
  const u = process.cpuUsage()
  return u.user + u.system
}

export const collectGarbage = () => (globalThis as { gc?: () => void }).gc?.()

export function formatCell(v: Cell | undefined): string {
  if (v === undefined || v === null) return ''
  if (typeof v === 'number') return Number.isInteger(v) && Math.abs(v) >= 10_000 ? v.toLocaleString('en-US') : String(v)
  return String(v)
}

export function markdownTable(columns: (string | Column)[], rows: Row[]): string {
  const cols = columns.map((c) => (typeof c === 'string' ? { key: c } : c))
  const lines = [`| ${cols.map((c) => c.label ?? c.key).join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`]
  for (const row of rows) lines.push(`| ${cols.map((c) => (c.format ? c.format(row) : formatCell(row[c.key]))).join(' | ')} |`)
  return lines.join('\n')
}

export function verdict(ok: boolean, text: string): string {
  return `${ok ? 'PASS' : 'MISS'}  ${text}`
}

export interface Machine {
  cpu: string
  cores: number
  memory_gib: number
  os: string
  node: string
  simd: string
  onnxruntime: string
}

export function describeMachine(): Machine {
  let onnxruntime: string
  try {
    onnxruntime = initRuntime().version
  } catch (e) {
    onnxruntime = `unavailable (${e instanceof Error ? e.message : String(e)})`
  }
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memory_gib: round(totalmem() / 2 ** 30, 1),
    os: `${platform()} ${release()} ${process.arch}`,
    node: process.version,
    simd: simdKernels(),
    onnxruntime,
  }
}

export function progress(suite: string): (msg: string) => void {
  const t0 = performance.now()
  return (msg) => process.stderr.write(`[bench ${suite} +${((performance.now() - t0) / 1000).toFixed(1)}s] ${msg}\n`)
}
