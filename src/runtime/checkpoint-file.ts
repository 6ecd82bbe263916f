// The checkpoint format: a directory with a header (`manifest.json`: format, version, the run it
// belongs to, the tick to resume at, the options that must match, and every other file's size and
// SHA-256) and the parts: the runtime's state (`state.bin`, V8's serialisation) and the native
// components as they save themselves in Rust (`index.bin`, `registry.json`, `policy.state`).
// It is written under a temporary name and renamed when whole; it is read only after every file
// has been checked, so a damaged or truncated checkpoint is refused, never half-loaded.
import { createHash } from 'node:crypto'
import {
  closeSync,
  createReadStream,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { basename, dirname, join } from 'node:path'

import { MyriadError } from '../errors/index.js'

export const CHECKPOINT_FORMAT = 'myriad-checkpoint'
/** The format this version writes, and the newest it reads. */
export const CHECKPOINT_VERSION = 1
const MANIFEST = 'manifest.json'
/** The files of a checkpoint besides its manifest. */
export const PARTS = { state: 'state.bin', index: 'index.bin', registry: 'registry.json', policy: 'policy.state' } as const

/** Where the records stood when the checkpoint was taken. */
export type SinkPosition = { archive: string; files: Record<string, number> } | { postgres: true; schema: string }

export interface Manifest {
  format: typeof CHECKPOINT_FORMAT
  version: number
  name: string
  runId: string
  exp: string
  /** The first tick the resumed run takes. */
  tick: number
  /** Simulated time of tick 0 (ms since the epoch), so a resumed run keeps the clock. */
  start: number
  created: string
  /** The options a resume must match (see `fingerprint`). */
  fingerprint: Record<string, unknown>
  sink: SinkPosition
  files: Record<string, { bytes: number; sha256: string }>
}

export type ManifestHead = Omit<Manifest, 'format' | 'version' | 'created' | 'files'>

const corrupt = (path: string, why: string) => new MyriadError('ERR_CHECKPOINT_CORRUPT', `${path} is not a valid checkpoint: ${why}; nothing was loaded`)

async function sha256(path: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

/**
 * Writes a checkpoint at `path`: `fill(dir)` writes the parts into a temporary directory, then
 * the manifest goes in last and the directory is renamed to `path` (one that exists is replaced).
 */
export async function writeCheckpoint(path: string, head: ManifestHead, fill: (dir: string) => Promise<void>): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`)
  rmSync(tmp, { recursive: true, force: true })
  try {
    mkdirSync(tmp, { recursive: true })
    await fill(tmp)
    const files: Manifest['files'] = {}
    for (const name of readdirSync(tmp).sort()) {
      const file = join(tmp, name)
      fsyncPath(file)
      files[name] = { bytes: statSync(file).size, sha256: await sha256(file) }
    }
    const manifest: Manifest = { format: CHECKPOINT_FORMAT, version: CHECKPOINT_VERSION, ...head, created: new Date().toISOString(), files }
    writeFileSync(join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`)
    fsyncPath(join(tmp, MANIFEST))
    const old = existsSync(path) ? `${tmp}.old` : undefined
    if (old) renameSync(path, old)
    renameSync(tmp, path)
    if (old) rmSync(old, { recursive: true, force: true })
    fsyncPath(dirname(path))
  } catch (error) {
    rmSync(tmp, { recursive: true, force: true })
    throw error
  }
}

/** The checkpoints `every` writes under `dir`: `tick-<next tick>`, newest last. */
export function checkpointsIn(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir)
    .filter((n) => /^tick-\d+$/.test(n) && existsSync(join(dir, n, MANIFEST)))
    .sort((a, b) => Number(a.slice(5)) - Number(b.slice(5)))
    .map((n) => join(dir, n))
}

/**
 * Reads and checks the checkpoint at `path` (or, for a directory of them, its newest): the
 * manifest's format and version, and every file's size and checksum. Throws
 * `ERR_CHECKPOINT_CORRUPT` naming what is wrong, `ERR_CHECKPOINT_VERSION` for a newer format.
 */
export async function openCheckpoint(path: string): Promise<{ dir: string; manifest: Manifest }> {
  if (typeof path !== 'string' || !existsSync(path)) throw new MyriadError('ERR_IO', `resume: ${String(path)} does not exist`)
  let dir = path
  if (!existsSync(join(dir, MANIFEST))) {
    const newest = checkpointsIn(path).at(-1)
    if (!newest) throw corrupt(path, `no ${MANIFEST} in it, nor a tick-<n> checkpoint`)
    dir = newest
  }
  let manifest: Manifest
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Manifest
  } catch (error) {
    throw corrupt(join(dir, MANIFEST), `unreadable (${(error as Error).message})`)
  }
  if (manifest?.format !== CHECKPOINT_FORMAT) throw corrupt(dir, `its ${MANIFEST} is not a Myriad checkpoint's`)
  if (!Number.isInteger(manifest.version) || manifest.version < 1) throw corrupt(dir, `format version ${String(manifest.version)}`)
  if (manifest.version > CHECKPOINT_VERSION) {
    throw new MyriadError(
      'ERR_CHECKPOINT_VERSION',
      `${dir} is a checkpoint of format version ${manifest.version}; this Myriad reads versions up to ${CHECKPOINT_VERSION}: upgrade Myriad to resume it`,
    )
  }
  if (typeof manifest.files !== 'object' || manifest.files === null || !Number.isInteger(manifest.tick))
    throw corrupt(dir, `its ${MANIFEST} lacks files or tick`)
  for (const [name, { bytes, sha256: sum }] of Object.entries(manifest.files)) {
    const file = join(dir, name)
    if (!existsSync(file)) throw corrupt(file, 'the file is missing')
    const size = statSync(file).size
    if (size !== bytes) throw corrupt(file, `${size} bytes, the manifest says ${bytes} (truncated or changed)`)
    if ((await sha256(file)) !== sum) throw corrupt(file, 'its SHA-256 does not match the manifest (damaged)')
  }
  return { dir, manifest }
}
