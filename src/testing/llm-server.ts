// A local OpenAI-compatible server for tests, the bench and examples: `@myriad-agents/core/testing`.
//
//   POST /v1/chat/completions (plain and `stream: true`), POST /v1/embeddings, GET /v1/models
//
// Replies are deterministic: a canned reply for the last user message if one is configured, else
// `reply to: <that message>`. Latency follows a configured distribution (seeded); faults come from
// rules matched against the last user message (`times` bounds how often a rule fires, so "fail
// twice, then answer" is one rule) or from seeded random rates.
//
// Standalone: node --import tsx src/testing/llm-server.ts --port 8089 [--latency-ms 100] [--jitter-ms 0]
//             [--rate-429 0] [--rate-500 0] [--rate-reset 0] [--rate-hang 0] [--seed 42] [--workers 1] [--control-stdin]
// prints one JSON line {"url": ...} once it listens.
import cluster from 'node:cluster'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { pathToFileURL } from 'node:url'

import { mulberry32 } from './math.js'

export type LatencyDistribution =
  | { fixedMs: number }
  | { uniformMs: [number, number] }
  /** Log-normal: median and the sigma of its logarithm (0.5 gives p99 ~ 3.2 x median). */
  | { medianMs: number; sigma: number }

/** A fixed latency, or uniform within ± `jitterMs` of it (never below 0): what the CLIs take as flags. */
export function latencyOf(latencyMs: number, jitterMs = 0): LatencyDistribution {
  return jitterMs > 0 ? { uniformMs: [Math.max(0, latencyMs - jitterMs), latencyMs + jitterMs] } : { fixedMs: latencyMs }
}

/** What the server does with one request. Unset fields take the server's defaults. */
export interface Behaviour {
  /** Answer with this status and an OpenAI-style error body. */
  status?: number
  /** Retry-After header value sent with `status`. */
  retryAfter?: string
  /** Close the connection without answering. */
  reset?: boolean
  /** Never answer (until the client gives up or the server closes). */
  hang?: boolean
  latencyMs?: number
  /** The reply text. */
  reply?: string
  /** The reply is this value as JSON. */
  json?: unknown
  /** Wrap the reply in a ```json fence with a sentence before and after. */
  fenced?: boolean
  /** Cut the JSON reply short (invalid JSON). */
  broken?: boolean
  /** Answer with a tool call instead of text. */
  toolCall?: { name: string; arguments: string }
  /** 200 with a body that is not JSON. */
  garbage?: boolean
  /** Streams: pause between chunks, and how many chunks the reply is cut into (default: one per word). */
  chunkDelayMs?: number
  chunks?: number
  /** Send no `usage` (some OpenAI-compatible servers never do): the client has to estimate. */
  noUsage?: boolean
}

export interface Rule {
  /** Substring of, or pattern on, the last user message; absent matches every request. */
  match?: string | RegExp
  /** Fires this many times, then is skipped (default: always). */
  times?: number
  then: Behaviour
}

export interface LLMServerOptions {
  port?: number
  host?: string
  latency?: LatencyDistribution
  seed?: number
  /** Random faults per request, drawn from the seeded stream. */
  faults?: { rate429?: number; rate500?: number; rateReset?: number; rateHang?: number; retryAfterS?: number }
  /** Past `concurrency` requests in flight each extra one adds `slowdownMs` to every latency (a provider's knee). */
  knee?: { concurrency: number; slowdownMs: number }
  /** Canned replies by exact last user message. */
  replies?: Record<string, string>
  rules?: Rule[]
  /** Keep the parsed request bodies in `received` (tests inspect what was sent). */
  record?: boolean
}

export interface ServerStats {
  requests: number
  byStatus: Record<number, number>
  resets: number
  hangs: number
  inflight: number
  peakInflight: number
  models: Record<string, number>
  authorization: string | undefined
  /** Streams the client closed before the server finished them. */
  streamsCut: number
}

interface ChatBody {
  model?: string
  messages?: { role: string; content: string | null }[]
  stream?: boolean
  input?: string | string[]
  response_format?: { type: string; json_schema?: { schema?: JsonSchema } }
}

export class LLMServer {
  readonly url: string
  readonly rules: Rule[]
  readonly received: ChatBody[] = []
  readonly stats: ServerStats = {
    requests: 0,
    byStatus: {},
    resets: 0,
    hangs: 0,
    inflight: 0,
    peakInflight: 0,
    models: {},
    authorization: undefined,
    streamsCut: 0,
  }
  private readonly random: () => number
  private readonly sockets = new Set<Socket>()

  constructor(
    private readonly server: Server,
    private readonly opts: LLMServerOptions,
  ) {
    const address = server.address()
    if (!address || typeof address === 'string') throw new Error('the server is not listening on TCP')
    this.url = `http://${opts.host ?? '127.0.0.1'}:${address.port}/v1`
    this.rules = opts.rules ?? []
    this.random = mulberry32(opts.seed ?? 42)
    server.on('connection', (socket) => {
      this.sockets.add(socket)
      socket.on('close', () => this.sockets.delete(socket))
    })
    server.on('request', (req, res) => this.handle(req, res))
  }

  /** Adds a rule in front of the others (tests script faults per request). */
  addRule(rule: Rule): void {
    this.rules.unshift(rule)
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  private handle(req: IncomingMessage, res: ServerResponse) {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/v1/models') return this.send(res, 200, { object: 'list', data: [] })
      let body: ChatBody
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as ChatBody
      } catch {
        return this.send(res, 400, { error: { message: 'the body is not JSON', type: 'invalid_request_error' } })
      }
      this.stats.requests++
      this.stats.authorization = req.headers.authorization
      if (body.model) this.stats.models[body.model] = (this.stats.models[body.model] ?? 0) + 1
      if (this.opts.record) this.received.push(body)
      const route = req.url === '/v1/chat/completions' ? 'chat' : req.url === '/v1/embeddings' ? 'embeddings' : undefined
      if (!route) return this.send(res, 404, { error: { message: `no route ${req.url}`, type: 'invalid_request_error' } })
      const behaviour = this.behaviourFor(body)
      if (behaviour.reset) {
        this.stats.resets++
        return req.socket.destroy()
      }
      if (behaviour.hang) {
        this.stats.hangs++
        return
      }
      this.stats.inflight++
      if (this.stats.inflight > this.stats.peakInflight) this.stats.peakInflight = this.stats.inflight
      const finish = () => {
        this.stats.inflight--
        if (behaviour.status) {
          const headers = behaviour.retryAfter !== undefined ? { 'retry-after': behaviour.retryAfter } : undefined
          return this.send(res, behaviour.status, { error: { message: `injected ${behaviour.status}`, type: 'server_error' } }, headers)
        }
        if (route === 'embeddings') return this.send(res, 200, embeddings(body))
        if (behaviour.garbage) return this.sendText(res, 200, '<html>bad gateway page</html>')
        if (body.stream) return this.stream(res, body, behaviour)
        this.send(res, 200, completion(body, behaviour, this.replyFor(body, behaviour)))
      }
      const delay = behaviour.latencyMs ?? this.latency()
      if (delay > 0) setTimeout(finish, delay)
      else finish()
    })
  }

  private behaviourFor(body: ChatBody): Behaviour {
    const last = lastUserMessage(body)
    for (const rule of this.rules) {
      if (rule.times !== undefined && rule.times <= 0) continue
      const matched = rule.match === undefined || (typeof rule.match === 'string' ? last.includes(rule.match) : rule.match.test(last))
      if (!matched) continue
      if (rule.times !== undefined) rule.times--
      return rule.then
    }
    const faults = this.opts.faults
    if (!faults) return {}
    const draw = this.random()
    let edge = faults.rate429 ?? 0
    if (draw < edge) return { status: 429, retryAfter: String(faults.retryAfterS ?? 1) }
    if (draw < (edge += faults.rate500 ?? 0)) return { status: 500 }
    if (draw < (edge += faults.rateReset ?? 0)) return { reset: true }
    if (draw < (edge += faults.rateHang ?? 0)) return { hang: true }
    return {}
  }

  private latency(): number {
    const d = this.opts.latency
    let ms = 0
    if (d && 'fixedMs' in d) ms = d.fixedMs
    else if (d && 'uniformMs' in d) ms = d.uniformMs[0] + this.random() * (d.uniformMs[1] - d.uniformMs[0])
    else if (d) ms = d.medianMs * Math.exp(d.sigma * gaussian(this.random))
    const knee = this.opts.knee
    if (knee && this.stats.inflight > knee.concurrency) ms += (this.stats.inflight - knee.concurrency) * knee.slowdownMs
    return ms
  }

  private replyFor(body: ChatBody, behaviour: Behaviour): string {
    let text: string
    if (behaviour.json !== undefined) {
      text = JSON.stringify(behaviour.json)
      if (behaviour.broken) text = text.slice(0, Math.max(1, text.length - 3))
    } else if (behaviour.reply === undefined && this.opts.replies?.[lastUserMessage(body)] === undefined && body.response_format?.json_schema?.schema) {
      // Asked for JSON of a schema with no canned reply: a value that fits it, drawn from the
      // request itself, so that the same request gets the same answer and different agents differ.
      text = JSON.stringify(instanceOf(body.response_format.json_schema.schema, mulberry32(fnv(JSON.stringify(body.messages ?? [])))))
    } else {
      text = behaviour.reply ?? this.opts.replies?.[lastUserMessage(body)] ?? `reply to: ${lastUserMessage(body)}`
    }
    return behaviour.fenced ? `Here is the result:\n\`\`\`json\n${text}\n\`\`\`\nLet me know if you need more.` : text
  }

  private stream(res: ServerResponse, body: ChatBody, behaviour: Behaviour) {
    const text = this.replyFor(body, behaviour)
    const pieces = splitReply(text, behaviour.chunks)
    const id = 'chatcmpl-local'
    const event = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', model: body.model, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    res.on('close', () => {
      if (!res.writableFinished) this.stats.streamsCut++
    })
    let i = 0
    const next = () => {
      if (res.destroyed) return
      if (i < pieces.length) {
        res.write(event(i === 0 ? { role: 'assistant', content: pieces[i] } : { content: pieces[i] }, null))
        i++
        if (behaviour.chunkDelayMs) setTimeout(next, behaviour.chunkDelayMs)
        else next()
        return
      }
      res.write(event({}, 'stop'))
      if (!behaviour.noUsage) res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', choices: [], usage: usage(body, text) })}\n\n`)
      res.end('data: [DONE]\n\n')
    }
    next()
  }

  private send(res: ServerResponse, status: number, payload: unknown, headers?: Record<string, string>) {
    this.sendText(res, status, JSON.stringify(payload), { 'content-type': 'application/json', ...headers })
  }

  private sendText(res: ServerResponse, status: number, text: string, headers: Record<string, string> = { 'content-type': 'text/html' }) {
    this.stats.byStatus[status] = (this.stats.byStatus[status] ?? 0) + 1
    res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }
}

/** The JSON Schema subset zod's toJSONSchema writes for objects, enums, numbers, strings and arrays. */
interface JsonSchema {
  type?: string | string[]
  properties?: Record<string, JsonSchema>
  enum?: unknown[]
  const?: unknown
  items?: JsonSchema
  minItems?: number
  maxItems?: number
  minimum?: number
  maximum?: number
  exclusiveMinimum?: number
  exclusiveMaximum?: number
  maxLength?: number
  anyOf?: JsonSchema[]
}

function fnv(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193)
  return h >>> 0
}

/** A value that fits `schema`, drawn with `rand`. */
function instanceOf(schema: JsonSchema, rand: () => number): unknown {
  if (schema.const !== undefined) return schema.const
  if (schema.enum) return schema.enum[Math.floor(rand() * schema.enum.length)]
  if (schema.anyOf?.length) return instanceOf(schema.anyOf[0], rand)
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type
  switch (type) {
    case 'object':
      return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, v]) => [k, instanceOf(v, rand)]))
    case 'array': {
      const min = schema.minItems ?? 0
      const max = Math.max(min, schema.maxItems ?? min + 2)
      const items = schema.items ?? {}
      const n = min + Math.floor(rand() * (max - min + 1))
      // Distinct picks from an enum (a multiple-choice answer takes each option once).
      if (items.enum) return [...items.enum].sort(() => rand() - 0.5).slice(0, Math.min(n, items.enum.length))
      return Array.from({ length: n }, () => instanceOf(items, rand))
    }
    case 'integer':
    case 'number': {
      const lo = schema.minimum ?? (schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 1 : 0)
      const hi = schema.maximum ?? (schema.exclusiveMaximum !== undefined ? schema.exclusiveMaximum - 1 : lo + 100)
      const v = lo + rand() * (hi - lo)
      return type === 'integer' ? Math.min(Math.floor(hi), Math.max(Math.ceil(lo), Math.round(v))) : Math.round(v * 100) / 100
    }
    case 'boolean':
      return rand() < 0.5
    case 'string':
      return 'an answer'.slice(0, schema.maxLength ?? 9)
    default:
      return null
  }
}

function lastUserMessage(body: ChatBody): string {
  const messages = body.messages ?? []
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i].role === 'user') return messages[i].content ?? ''
  return ''
}

const tokens = (text: string) => Math.ceil(text.length / 4)

function usage(body: ChatBody, reply: string) {
  const prompt = (body.messages ?? []).reduce((sum, m) => sum + 4 + tokens(m.content ?? ''), 0)
  return { prompt_tokens: prompt, completion_tokens: tokens(reply), total_tokens: prompt + tokens(reply) }
}

function completion(body: ChatBody, behaviour: Behaviour, text: string) {
  const message = behaviour.toolCall
    ? { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: behaviour.toolCall }] }
    : { role: 'assistant', content: text }
  return {
    id: 'chatcmpl-local',
    object: 'chat.completion',
    created: 0,
    model: body.model,
    choices: [{ index: 0, message, finish_reason: behaviour.toolCall ? 'tool_calls' : 'stop' }],
    usage: behaviour.noUsage ? undefined : usage(body, behaviour.toolCall ? behaviour.toolCall.arguments : text),
  }
}

/** Deterministic 8-dimensional vectors from the characters of each input. */
function embeddings(body: ChatBody) {
  const inputs = Array.isArray(body.input) ? body.input : [body.input ?? '']
  const data = inputs.map((text, index) => {
    const v = new Array<number>(8).fill(0)
    for (let i = 0; i < text.length; i++) v[i % 8] += text.charCodeAt(i) / 1000
    return { object: 'embedding', index, embedding: v }
  })
  return { object: 'list', model: body.model, data, usage: { prompt_tokens: inputs.reduce((s, t) => s + tokens(t), 0), total_tokens: 0 } }
}

function splitReply(text: string, chunks: number | undefined): string[] {
  if (!chunks) return text.split(/(?<= )/)
  const size = Math.ceil(text.length / chunks)
  const pieces: string[] = []
  for (let i = 0; i < text.length; i += size) pieces.push(text.slice(i, i + size))
  return pieces
}

/** A standard normal draw (Box-Muller) from a uniform stream. */
function gaussian(random: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
}

export function startLLMServer(opts: LLMServerOptions = {}): Promise<LLMServer> {
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 })
  // Longer than clients keep idle sockets, so a client never writes into a socket we are closing.
  server.keepAliveTimeout = 65_000
  server.headersTimeout = 66_000
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    // A large backlog: a thousand clients connecting at once must not wait for SYN retries.
    server.listen({ port: opts.port ?? 0, host: opts.host ?? '127.0.0.1', backlog: 4096 }, () => resolve(new LLMServer(server, opts)))
  })
}

function parseCli(argv: string[]): LLMServerOptions & { workers: number } {
  const get = (flag: string) => {
    const i = argv.indexOf(flag)
    return i >= 0 ? Number(argv[i + 1]) : undefined
  }
  const latency = get('--latency-ms') ?? 0
  const jitter = get('--jitter-ms') ?? 0
  return {
    port: get('--port') ?? 8089,
    seed: get('--seed') ?? 42,
    latency: latencyOf(latency, jitter),
    faults: { rate429: get('--rate-429'), rate500: get('--rate-500'), rateReset: get('--rate-reset'), rateHang: get('--rate-hang') },
    workers: get('--workers') ?? 1,
  }
}

/**
 * The CLI. `--workers N` runs N server processes on one port (node:cluster): one Node process
 * answers fewer requests a second than a million-call run needs (docs/benchmarks/async.md).
 */
async function main(argv: string[]) {
  const options = parseCli(argv)
  let url: string
  let stop: () => void
  if (options.workers > 1 && cluster.isPrimary) {
    cluster.setupPrimary({ execArgv: process.execArgv, args: argv })
    const workers = Array.from({ length: options.workers }, () => cluster.fork())
    // Workers listening on the same port share it (port 0: the first one's random port).
    const urls = await Promise.all(workers.map((w) => new Promise<string>((resolve) => w.once('message', (m: { url: string }) => resolve(m.url)))))
    url = urls[0]
    stop = () => {
      for (const w of workers) w.kill()
      process.exit(0)
    }
  } else {
    const server = await startLLMServer(options)
    if (cluster.isWorker) {
      process.send!({ url: server.url })
      return
    }
    url = server.url
    stop = () => void server.close().then(() => process.exit(0))
  }
  process.stdout.write(`${JSON.stringify({ url })}\n`)
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  // For a parent process (the bench): closing our stdin stops the server.
  if (argv.includes('--control-stdin')) process.stdin.on('end', stop).resume()
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main(process.argv.slice(2))
