// `myriad llm-server`: the repository's OpenAI-compatible test server on a port, so examples and
// experiments run with no key and no network. Deterministic replies; latency, faults and JSON
// replies as flags.
import { parseArgs } from 'node:util'

import { MyriadError } from '../../errors/index.js'
import { type LLMServerOptions, latencyOf, startLLMServer } from '../../testing/index.js'
import type { Command } from '../command.js'

const FLAGS = {
  port: { type: 'string', default: '8089' },
  host: { type: 'string', default: '127.0.0.1' },
  'latency-ms': { type: 'string', default: '0' },
  'jitter-ms': { type: 'string', default: '0' },
  'rate-429': { type: 'string' },
  'rate-500': { type: 'string' },
  'rate-reset': { type: 'string' },
  'rate-hang': { type: 'string' },
  seed: { type: 'string', default: '42' },
  'json-reply': { type: 'string' },
  fenced: { type: 'boolean' },
} as const

export const llmServer: Command = {
  name: 'llm-server',
  summary: 'start the OpenAI-compatible test server (no key, no network)',
  usage: `usage: myriad llm-server [--port 8089] [--host 127.0.0.1] [--latency-ms 0] [--jitter-ms 0]
                          [--rate-429 P] [--rate-500 P] [--rate-reset P] [--rate-hang P] [--seed 42]
                          [--json-reply JSON [--fenced]]

Serves POST /v1/chat/completions (plain and streaming), POST /v1/embeddings and GET /v1/models.
A reply is "reply to: <the last user message>", or with --json-reply that JSON (in a markdown
json code fence between two sentences with --fenced, as chatty models answer). --rate-* are the shares of requests answered
with 429, 500, a reset connection or no answer at all. Prints {"url": ...} once it listens;
Ctrl-C stops it.

examples:
  myriad llm-server --port 8089 --latency-ms 100
  MYRIAD_LLM_URL=http://127.0.0.1:8089/v1 myriad run
  myriad llm-server --json-reply '{"answer":"yes","confidence":0.9}' --rate-429 0.05`,
  async run(argv) {
    const { values } = parseArgs({ args: argv, options: FLAGS })
    const num = (flag: keyof typeof FLAGS): number | undefined => {
      const raw = values[flag]
      if (raw === undefined || typeof raw === 'boolean') return undefined
      const x = Number(raw)
      if (!Number.isFinite(x) || x < 0) throw new MyriadError('ERR_INVALID_ARG', `--${flag} needs a non-negative number, got '${raw}'`)
      return x
    }
    const latency = num('latency-ms') ?? 0
    const jitter = num('jitter-ms') ?? 0
    let json: unknown
    if (values['json-reply'] !== undefined) {
      try {
        json = JSON.parse(values['json-reply'])
      } catch {
        throw new MyriadError('ERR_INVALID_ARG', `--json-reply needs JSON, got '${values['json-reply']}'`)
      }
    }
    const options: LLMServerOptions = {
      port: num('port'),
      host: values.host,
      seed: num('seed'),
      latency: latencyOf(latency, jitter),
      faults: { rate429: num('rate-429'), rate500: num('rate-500'), rateReset: num('rate-reset'), rateHang: num('rate-hang') },
      rules: json === undefined ? [] : [{ then: { json, fenced: values.fenced === true } }],
    }
    const server = await startLLMServer(options)
    console.log(JSON.stringify({ url: server.url }))
    await new Promise<void>((resolve) => {
      const stop = () => resolve()
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
    })
    await server.close()
    return 0
  },
}
