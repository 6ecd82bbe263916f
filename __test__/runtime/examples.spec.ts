// The examples of examples/ run as a user runs them (`npx tsx examples/NAME.ts`), at a small scale,
// and their records are read back: from the archive, and in one case from Postgres.
import { execFile } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

import test from 'ava'
import pg from 'pg'

import { readArchive } from '../../src/index.js'
import { DSN, archiveDir, cleanup } from './helpers.js'

const root = join(import.meta.dirname, '..', '..')
const run = promisify(execFile)

async function example(file: string, env: Record<string, string>): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', file], { cwd: root, env: { ...process.env, ...env }, timeout: 240_000 })
  return stdout
}

/** The one run directory an example wrote under `runs`, and its experiment id. */
function runOf(runs: string, name: string): { dir: string; exp: string } {
  const [runId] = readdirSync(join(runs, name))
  return { dir: join(runs, name, runId), exp: `${name}/${runId}` }
}

test('hello: 10 agents greet each other for 3 ticks', async (t) => {
  const runs = archiveDir('hello')
  const out = await example('examples/hello.ts', { MYRIAD_RUNS_DIR: runs })
  t.regex(out, /tick 2:/)
  const { dir, exp } = runOf(runs, 'hello')
  const messages = await readArchive(dir, { table: 'messages', exp })
  t.true(messages.length >= 20, `${messages.length} messages`)
  t.true(messages.every((m) => m.kind === 'hello' && typeof (m.payload as { text: string }).text === 'string'))
  const agents = await readArchive(dir, { table: 'agents', exp })
  t.is(agents.length, 10)
  cleanup(runs)
})

test('mutual-aid: questions routed by findHelpers are answered with the LLM and judged (records in Postgres)', async (t) => {
  await example('examples/mutual-aid.ts', { MYRIAD_AGENTS: '400', MYRIAD_TICKS: '6', MYRIAD_DSN: DSN })
  const client = new pg.Client({ connectionString: DSN })
  await client.connect()
  try {
    const { rows } = await client.query("SELECT exp_id FROM myriad.agents WHERE exp_id LIKE 'mutual-aid/%' ORDER BY exp_id DESC LIMIT 1")
    const exp = rows[0].exp_id as string
    const count = async (sql: string) => Number((await client.query(sql, [exp])).rows[0].n)
    t.is(await count('SELECT count(*) AS n FROM myriad.agents WHERE exp_id = $1'), 400)
    t.true((await count("SELECT count(*) AS n FROM myriad.messages WHERE exp_id = $1 AND kind = 'question'")) > 0)
    t.true((await count("SELECT count(*) AS n FROM myriad.messages WHERE exp_id = $1 AND kind = 'answer'")) > 0)
    t.true((await count("SELECT count(*) AS n FROM myriad.llm_calls WHERE exp_id = $1 AND outcome = 'ok'")) > 0)
    t.true((await count("SELECT count(*) AS n FROM myriad.metrics WHERE exp_id = $1 AND name = 'routing_ms'")) > 0)
  } finally {
    await client.end()
  }
})

test('social: posts reach followers, users follow through the semantic index', async (t) => {
  const runs = archiveDir('social')
  const out = await example('examples/social.ts', { MYRIAD_AGENTS: '2000', MYRIAD_TICKS: '3', MYRIAD_RUNS_DIR: runs })
  t.regex(out, /posts, \d+ read/)
  const { dir, exp } = runOf(runs, 'social')
  const messages = await readArchive(dir, { table: 'messages', exp })
  t.true(messages.filter((m) => m.kind === 'follow').length >= 6000)
  t.true(messages.some((m) => m.kind === 'post'))
  const calls = await readArchive(dir, { table: 'llm_calls', exp })
  t.true(calls.length > 0 && calls.every((c) => c.outcome === 'ok'))
  cleanup(runs)
})
