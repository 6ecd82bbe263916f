// Suite `sink`: 1,000,000 `messages` rows built as JS objects (uuid, Date, small jsonb payload),
// recorded by the sink (COPY to Postgres; Avro archive) and, side by side in the same run, by
// pg + pg-copy-streams (text COPY, batches of 2,000), multi-row INSERT (1,000 rows a statement),
// single-row INSERT (on a sample) and `psql \copy` of the same rows from a file (the ceiling).
// rows/s counts from the first row handed over to the last one durable; JS CPU is the main
// thread's. Every method writes into the same partitioned, indexed table, emptied before each run,
// and the row count is checked after each. Each run gets rows built afresh: Node's randomUUID()
// strings are ropes, and a method that passes one to Buffer.byteLength (node-postgres's INSERT
// parameters) flattens it in place, so rows reused after it read ~0.4 us a row faster.
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'

import { Sink, migrate, type SinkRows } from '../../src/index.js'
import { collectGarbage, mainThreadCpuUs, round, verdict, type Row, type Suite } from '../harness.js'

const DSN = process.env.MYRIAD_BENCH_DSN ?? 'postgres://root@127.0.0.1:5432/test'
const SCHEMA = 'myriad_bench'
const EXP = 'bench'
const BATCH = 2000
const COLUMNS = 'exp_id, msg_id, src, dst, kind, ts, payload'
type Message = SinkRows['messages'] & { msg_id: string; dst: string; kind: string; ts: Date }

function makeRows(n: number): Message[] {
  const t0 = Date.UTC(2026, 10, 29)
  return Array.from({ length: n }, (_, i) => ({
    exp_id: EXP,
    msg_id: randomUUID(),
    src: `agent-${i % 1000}`,
    dst: `agent-${(i * 7 + 1) % 1000}`,
    kind: 'agent-chat',
    ts: new Date(t0 + i),
    payload: { text: `message ${i}`, mood: i % 5, tags: ['market', 'gossip'] },
  }))
}

/** COPY text format: tab-separated, `\N` never needed here, backslash and control characters escaped. */
const escapeCopy = (s: string) => s.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r'))
const copyLine = (r: Message) => `${r.exp_id}\t${r.msg_id}\t${r.src}\t${r.dst}\t${r.kind}\t${r.ts.toISOString()}\t${escapeCopy(JSON.stringify(r.payload))}\n`

interface Run {
  rows: number
  seconds: number
  cpuUs: number
}

async function timed(rows: number, work: () => Promise<void>): Promise<Run> {
  collectGarbage()
  const cpu0 = mainThreadCpuUs()
  const t0 = performance.now()
  await work()
  return { rows, seconds: (performance.now() - t0) / 1000, cpuUs: mainThreadCpuUs() - cpu0 }
}

async function viaSink(rows: Message[], options: { dsn?: string; dir?: string }): Promise<Run> {
  const sink = await Sink.open({ ...options, schema: SCHEMA, batchRows: BATCH })
  try {
    return await timed(rows.length, async () => {
      // A few calls in flight, so stringifying the next slice overlaps checking the last.
      const inflight: Promise<unknown>[] = []
      for (let i = 0; i < rows.length; i += BATCH) {
        inflight.push(
          sink.write('messages', rows.slice(i, i + BATCH)).then((out) => {
            if (out.accepted !== Math.min(BATCH, rows.length - i)) throw new Error(`sink rejected rows: ${JSON.stringify(out.rejected[0])}`)
          }),
        )
        if (inflight.length >= 4) await inflight.shift()
      }
      await Promise.all(inflight)
      await sink.flush()
    })
  } finally {
    await sink.close()
  }
}

async function viaArchive(rows: Message[]): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-bench-avro-'))
  try {
    return await viaSink(rows, { dir })
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function viaCopyStreams(client: pg.Client, rows: Message[]): Promise<Run> {
  return timed(rows.length, async () => {
    for (let i = 0; i < rows.length; i += BATCH) {
      const stream = client.query(copyFrom(`COPY ${SCHEMA}.messages (${COLUMNS}) FROM STDIN`))
      const done = new Promise<void>((resolve, reject) => {
        stream.on('finish', resolve)
        stream.on('error', reject)
      })
      let chunk = ''
      for (let j = i; j < Math.min(i + BATCH, rows.length); j++) chunk += copyLine(rows[j])
      stream.end(chunk)
      await done
    }
  })
}

async function viaMultiInsert(client: pg.Client, rows: Message[], perStatement = 1000): Promise<Run> {
  return timed(rows.length, async () => {
    for (let i = 0; i < rows.length; i += perStatement) {
      const slice = rows.slice(i, i + perStatement)
      const values: unknown[] = []
      const tuples = slice.map((r, k) => {
        values.push(r.exp_id, r.msg_id, r.src, r.dst, r.kind, r.ts, JSON.stringify(r.payload))
        const b = k * 7
        return `($${b + 1},$${b + 2},$${b + 3},$${b + 4},$${b + 5},$${b + 6},$${b + 7})`
      })
      await client.query(`INSERT INTO ${SCHEMA}.messages (${COLUMNS}) VALUES ${tuples.join(',')}`, values)
    }
  })
}

async function viaPsql(rows: Message[]): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'myriad-bench-copy-'))
  const file = join(dir, 'messages.tsv')
  try {
    // Writing the file is not timed: psql reads a file that is already there.
    const parts: string[] = []
    for (const r of rows) parts.push(copyLine(r))
    writeFileSync(file, parts.join(''))
    const run = await timed(rows.length, async () => {
      await promisify(execFile)('psql', [DSN, '-v', 'ON_ERROR_STOP=1', '-c', `\\copy ${SCHEMA}.messages (${COLUMNS}) FROM '${file}'`])
    })
    return { ...run, cpuUs: Number.NaN } // psql's CPU is not JS; no figure
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

async function count(client: pg.Client): Promise<number> {
  return Number((await client.query(`SELECT count(*) AS n FROM ${SCHEMA}.messages`)).rows[0].n)
}

function row(method: string, run: Run, counted: number | null): Row {
  return {
    method,
    rows: run.rows,
    rows_per_s: Math.round(run.rows / run.seconds),
    js_cpu_us_per_row: Number.isNaN(run.cpuUs) ? null : round(run.cpuUs / run.rows, 3),
    lost: counted === null ? null : run.rows - counted,
  }
}

export const sink: Suite = {
  name: 'sink',
  title: 'Recording 1,000,000 messages rows: the sink (COPY, Avro) vs pg-copy-streams, INSERT and psql \\copy',
  columns: ['method', 'rows', 'rows_per_s', 'js_cpu_us_per_row', 'lost'],
  async run({ opts, progress, note }) {
    const n = opts.n?.[0] ?? (opts.quick ? 20_000 : 1_000_000)
    const sample = Math.min(n, opts.quick ? 500 : 5000)
    const rounds = opts.iterations ?? (opts.quick ? 1 : 2)
    await migrate(DSN, { schema: SCHEMA })
    const client = new pg.Client({ connectionString: DSN })
    await client.connect()
    const results = new Map<string, Row>()
    const keepBest = (r: Row) => {
      const old = results.get(String(r.method))
      if (!old || Number(r.rows_per_s) > Number(old.rows_per_s)) results.set(String(r.method), r)
    }
    const reset = async () => {
      await client.query(`TRUNCATE ${SCHEMA}.messages`)
      await client.query(`CHECKPOINT`).catch(() => undefined) // needs superuser; evens out the runs where allowed
    }
    try {
      // The sink creates the experiment's partition on its first write; the peers reuse it.
      for (let r = 0; r < rounds; r++) {
        for (const [method, go] of [
          ['myriad-copy', (rows: Message[]) => viaSink(rows, { dsn: DSN })],
          ['pg-copy-streams', (rows: Message[]) => viaCopyStreams(client, rows)],
          ['psql-copy', (rows: Message[]) => viaPsql(rows)],
        ] as const) {
          await reset()
          progress(`round ${r + 1}/${rounds}: ${method}`)
          const run = await go(makeRows(n))
          keepBest(row(method, run, await count(client)))
        }
      }
      await reset()
      progress('multi-insert')
      keepBest(row('multi-insert', await viaMultiInsert(client, makeRows(n)), await count(client)))
      await reset()
      progress(`single-insert (${sample.toLocaleString('en')} rows)`)
      keepBest(row('single-insert', await viaMultiInsert(client, makeRows(sample), 1), await count(client)))
      await reset()
      // Last, on a quiet disk: the archive's run ends with an fsync of ~146 MB, which the server's
      // write-back after a 1,000,000-row COPY would otherwise slow down by half.
      for (let r = 0; r < rounds; r++) {
        progress(`round ${r + 1}/${rounds}: myriad-avro`)
        keepBest(row('myriad-avro', await viaArchive(makeRows(n)), null))
      }
    } finally {
      await client.end()
    }
    note(
      `The COPY methods ran ${rounds} round(s), alternating, and the archive ${rounds} at the end; the best round is reported; each run had rows built afresh. 'lost' = rows handed over minus rows counted in the table afterwards.`,
    )
    note('pg-copy-streams and INSERT use one connection; the sink writes on 2 (its default concurrency). Postgres runs on the same 2 cores.')
    return ['myriad-copy', 'myriad-avro', 'pg-copy-streams', 'psql-copy', 'multi-insert', 'single-insert'].flatMap((m): Row[] => {
      const r = results.get(m)
      return r ? [r] : []
    })
  },
  verdicts(rows) {
    const get = (m: string) => rows.find((r) => r.method === m)
    const ours = get('myriad-copy')
    const avro = get('myriad-avro')
    const streams = get('pg-copy-streams')
    const psql = get('psql-copy')
    const single = get('single-insert')
    const out: string[] = []
    const rate = (r?: Row) => Number(r?.rows_per_s ?? Number.NaN)
    if (ours && streams) {
      out.push(verdict(rate(ours) >= 1.1 * rate(streams), `myriad-copy ${(rate(ours) / rate(streams)).toFixed(2)}x pg-copy-streams rows/s (target >= 1.1x)`))
      const cpu = Number(ours.js_cpu_us_per_row) / Number(streams.js_cpu_us_per_row)
      out.push(verdict(cpu <= 1 / 3, `JS CPU per row ${(cpu).toFixed(2)}x of pg-copy-streams (target <= 0.33x)`))
    }
    if (ours && psql) out.push(verdict(rate(ours) >= 0.95 * rate(psql), `myriad-copy ${(rate(ours) / rate(psql)).toFixed(2)}x psql \\copy (target >= 0.95x)`))
    if (ours && single)
      out.push(verdict(rate(ours) >= 100 * rate(single), `myriad-copy ${Math.round(rate(ours) / rate(single))}x single-row INSERT (target >= 100x)`))
    if (avro) out.push(verdict(rate(avro) >= 1_000_000, `Avro archive ${rate(avro).toLocaleString('en')} rows/s (target >= 1,000,000)`))
    const lost = rows.filter((r) => Number(r.lost) !== 0 && r.lost !== null)
    out.push(verdict(lost.length === 0, lost.length ? `rows lost: ${lost.map((r) => `${r.method} ${r.lost}`).join(', ')}` : 'every method stored every row'))
    return out
  },
}
