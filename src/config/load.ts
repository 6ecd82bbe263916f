// Loading an experiment file: defaults < file < `MYRIAD_*` environment < command-line overrides,
// with where each value came from. Secrets never sit in the file: an API key or a password in a
// URL must be a `${ENV_VAR}` reference (or `apiKeyFile`), and what is shown (`config show`, logs,
// the summary) has them redacted.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, extname, resolve } from 'node:path'

import {
  Document,
  LineCounter,
  type Node,
  type Scalar,
  type YAMLMap,
  type YAMLSeq,
  isMap,
  isPair,
  isScalar,
  isSeq,
  parseDocument,
  parse as parseYaml,
} from 'yaml'

import { MyriadError } from '../errors/index.js'
import { ENV_VARS } from './env.js'
import { type Locate, type Path, describeIssues, getIn, showPath } from './issues.js'
import { type ExperimentConfig, ExperimentConfigSchema } from './schema.js'

/** One command-line override: `path` set to `value`, as the flag that said it. */
export interface Override {
  path: Path
  value: unknown
  source: string
}

export interface LoadConfigOptions {
  /** Overrides from the command line, applied last, in order. */
  overrides?: Override[]
  /** Default: process.env. */
  env?: NodeJS.ProcessEnv
}

export interface LoadedConfig {
  /** The experiment file, absolute. */
  readonly file: string
  /** Its directory: paths in the file are relative to it. */
  readonly dir: string
  /** The merged, checked configuration with its defaults (secrets in it are real: never print it, use `show`). */
  readonly config: ExperimentConfig
  /** Where the value at `path` came from: `default`, `file`, `env MYRIAD_…` or the flag. */
  sourceOf(path: Path): string
  /** The configuration as YAML, secrets redacted, each value commented with its source. */
  show(): string
}

/** The first provider's baseUrl before `myriad run` has started the file's test server. */
export const TEST_SERVER_PLACEHOLDER = 'http://127.0.0.1:0/v1'
const SECRET_KEYS = new Set(['apiKey', 'password'])
/** A URL with a password: scheme://user:password@... */
const URL_PASSWORD = /^([a-z][a-z0-9+.-]*:\/\/[^/@\s:]*:)([^/@\s]*)(@)/i
const REFERENCE = /^\$\{[A-Za-z_][A-Za-z0-9_]*\}$/
const fail = (lines: string[]) => new MyriadError('ERR_CONFIG', lines.join('\n'))

/** `a.b.0.c=value` (value read as YAML: numbers, booleans, lists and maps as written). */
export function parseOverride(text: string, source = `--set ${text}`): Override {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new MyriadError('ERR_CONFIG', `--set needs path=value, got '${text}'`)
  const path = text
    .slice(0, eq)
    .split('.')
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p))
  return { path, value: parseYaml(text.slice(eq + 1)) ?? null, source }
}

export function loadConfig(file: string, options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env
  const path = resolve(file)
  if (!existsSync(path)) throw new MyriadError('ERR_CONFIG', `${file}: no such experiment file (myriad init writes one)`)
  const lineCounter = new LineCounter()
  const doc = parseDocument(readFileSync(path, 'utf8'), { lineCounter, uniqueKeys: true, prettyErrors: true })
  if (doc.errors.length > 0) {
    throw fail(
      doc.errors.map((e) => {
        const at = e.linePos?.[0]
        return `${file}${at ? `:${at.line}:${at.col}` : ''}: ${extname(path) === '.json' ? 'invalid JSON/YAML' : 'invalid YAML'}: ${e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`
      }),
    )
  }
  // A path's key where it has one (an unknown key is pointed at itself), else its value.
  const locate: Locate = (p) => {
    const parent = p.length === 0 ? undefined : p.length === 1 ? doc.contents : (doc.getIn(p.slice(0, -1), true) as unknown)
    const pair = isMap(parent)
      ? (parent as YAMLMap).items.find((i) => isScalar(i.key) && String((i.key as Scalar).value) === String(p[p.length - 1]))
      : undefined
    const node = (pair?.key ?? doc.getIn(p, true)) as Node | undefined
    const offset = node?.range?.[0]
    return offset === undefined ? undefined : lineCounter.linePos(offset)
  }
  const raw = doc.toJS() ?? {}
  if (typeof raw !== 'object' || Array.isArray(raw)) throw fail([`${file}: the file must be a mapping of sections (experiment, agents, ...)`])
  const problems = [...checkSecrets(raw, [], file, locate)]
  const data = interpolate(raw, [], env, (p, name) => problems.push(`${where(file, locate, p)}: ${showPath(p)}: \${${name}} is not set in the environment`))
  if (problems.length > 0) throw fail(problems)

  const overrides: Override[] = []
  for (const v of ENV_VARS) {
    const value = env[v.name]
    // A key or model alone makes no provider: they apply to the file's, or to MYRIAD_LLM_URL's.
    if (v.path[0] === 'llm' && v.name !== 'MYRIAD_LLM_URL' && getIn(data, ['llm', 'providers', 0]) === undefined && !env.MYRIAD_LLM_URL) continue
    if (value !== undefined && value !== '') overrides.push({ path: v.path, value: v.parse(value), source: `env ${v.name}` })
  }
  overrides.push(...(options.overrides ?? []))
  const merged = structuredClone(data) as Record<string, unknown>
  for (const o of overrides) setIn(merged, o.path, structuredClone(o.value))
  completeEnvProvider(merged, overrides)
  // The file's testServer gets its URL when `myriad run` starts it; until then the first provider
  // points at a placeholder, so `config show` and `check` can read the file.
  const first = getIn(merged, ['llm', 'providers', 0]) as Record<string, unknown> | undefined
  if (merged.testServer && first && first.baseUrl === undefined) {
    first.baseUrl = TEST_SERVER_PLACEHOLDER
    overrides.push({ path: ['llm', 'providers', 0, 'baseUrl'], value: TEST_SERVER_PLACEHOLDER, source: 'testServer (its URL once myriad run starts it)' })
  }

  const sourceOf = (p: Path): string => {
    for (let i = overrides.length - 1; i >= 0; i--) if (isPrefix(overrides[i].path, p)) return overrides[i].source
    return getIn(data, p) !== undefined ? 'file' : 'default'
  }
  const parsed = ExperimentConfigSchema.safeParse(merged)
  if (!parsed.success) {
    throw fail(describeIssues(parsed.error.issues, ExperimentConfigSchema, merged, file, (p) => (sourceOf(p) === 'file' ? locate(p) : undefined), sourceOf))
  }
  const config = parsed.data
  return {
    file: path,
    dir: dirname(path),
    config,
    sourceOf,
    show: () => showConfig(config, sourceOf),
  }
}

const where = (file: string, locate: Locate, p: Path) => {
  const at = locate(p)
  return at ? `${file}:${at.line}:${at.col}` : file
}

/** Secrets written into the file itself: refused, with where they are. */
function checkSecrets(value: unknown, path: Path, file: string, locate: Locate): string[] {
  if (typeof value === 'string') {
    const key = path[path.length - 1]
    if (typeof key === 'string' && SECRET_KEYS.has(key) && !REFERENCE.test(value)) {
      return [
        `${where(file, locate, path)}: ${showPath(path)}: a secret is not written in the file: use \${ENV_VAR}${key === 'apiKey' ? ', apiKeyEnv or apiKeyFile' : ''}`,
      ]
    }
    const m = URL_PASSWORD.exec(value)
    if (m && !REFERENCE.test(m[2]))
      return [`${where(file, locate, path)}: ${showPath(path)}: the URL has a password: write it as \${ENV_VAR} (e.g. postgres://user:\${PGPASSWORD}@host/db)`]
    return []
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => checkSecrets(v, [...path, i], file, locate))
  if (value !== null && typeof value === 'object') return Object.entries(value).flatMap(([k, v]) => checkSecrets(v, [...path, k], file, locate))
  return []
}

/** `${NAME}` in strings, from the environment. */
function interpolate(value: unknown, path: Path, env: NodeJS.ProcessEnv, missing: (path: Path, name: string) => void): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
      const v = env[name]
      if (v === undefined) missing(path, name)
      return v ?? ''
    })
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, [...path, i], env, missing))
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, [...path, k], env, missing)]))
  }
  return value
}

/** MYRIAD_LLM_URL with no provider in the file makes one: it needs a name and a model. */
function completeEnvProvider(merged: Record<string, unknown>, overrides: Override[]): void {
  const provider = (getIn(merged, ['llm', 'providers', 0]) ?? undefined) as Record<string, unknown> | undefined
  if (!provider || !overrides.some((o) => o.path[0] === 'llm')) return
  provider.name ??= 'env'
  provider.models ??= ['default']
}

const isPrefix = (prefix: Path, path: Path) => prefix.length <= path.length && prefix.every((p, i) => String(p) === String(path[i]))

function setIn(data: Record<string | number, unknown>, path: Path, value: unknown): void {
  let at: Record<string | number, unknown> = data
  for (let i = 0; i < path.length - 1; i++) {
    const next = at[path[i]]
    if (next === null || typeof next !== 'object') at[path[i]] = typeof path[i + 1] === 'number' ? [] : {}
    at = at[path[i]] as Record<string | number, unknown>
  }
  at[path[path.length - 1]] = value
}

/** A copy with every secret replaced by `***` (API keys, passwords, the password of a URL). */
export function redactSecrets<T>(value: T, key?: string | number): T {
  if (typeof value === 'string') {
    if (typeof key === 'string' && SECRET_KEYS.has(key)) return '***' as T
    return value.replace(URL_PASSWORD, '$1***$3') as T
  }
  if (Array.isArray(value)) return value.map((v, i) => redactSecrets(v, i)) as T
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactSecrets(v, k)])) as T
  return value
}

function showConfig(config: ExperimentConfig, sourceOf: (path: Path) => string): string {
  const doc = new Document(redactSecrets(config))
  const annotate = (node: unknown, path: Path): void => {
    if (isMap(node)) {
      const map = node as YAMLMap
      if (map.items.length === 0) {
        map.flow = true
        map.comment = ` ${sourceOf(path)}`
      }
      for (const pair of map.items) {
        if (!isPair(pair)) continue
        const key = isScalar(pair.key) ? String((pair.key as Scalar).value) : String(pair.key)
        annotate(pair.value, [...path, key])
      }
    } else if (isSeq(node)) {
      const seq = node as YAMLSeq
      const sources = new Set(seq.items.map((_, i) => sourceOf([...path, i])))
      if (seq.items.length === 0 || (sources.size === 1 && seq.items.every((item) => isScalar(item)))) {
        seq.flow = true
        seq.comment = ` ${sourceOf(path)}`
      } else seq.items.forEach((item, i) => annotate(item, [...path, i]))
    } else if (isScalar(node)) {
      ;(node as Scalar).comment = ` ${sourceOf(path)}`
    }
  }
  annotate(doc.contents, [])
  return doc.toString({ lineWidth: 0 })
}
