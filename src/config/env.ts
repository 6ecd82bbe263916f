// The `MYRIAD_*` environment variables an experiment file can be overridden with: one table, which
// the loader applies and docs/reference/config.md lists.
import type { Path } from './issues.js'

export interface EnvVar {
  name: string
  /** Where in the file it lands. */
  path: Path
  parse: (raw: string) => unknown
  describe: string
  secret?: boolean
}

const int = (raw: string): unknown => (/^-?\d+$/.test(raw.trim()) ? Number(raw) : raw)

export const ENV_VARS: readonly EnvVar[] = [
  { name: 'MYRIAD_NAME', path: ['experiment', 'name'], parse: String, describe: 'experiment.name' },
  { name: 'MYRIAD_SEED', path: ['experiment', 'seed'], parse: int, describe: 'experiment.seed' },
  { name: 'MYRIAD_TICKS', path: ['experiment', 'ticks'], parse: int, describe: 'experiment.ticks' },
  { name: 'MYRIAD_BUS', path: ['bus'], parse: String, describe: "bus: 'local', 'embedded' or an MQTT URL" },
  { name: 'MYRIAD_DSN', path: ['sink'], parse: (raw) => ({ postgres: raw }), describe: 'sink: { postgres: <url> }', secret: true },
  {
    name: 'MYRIAD_LLM_URL',
    path: ['llm', 'providers', 0, 'baseUrl'],
    parse: String,
    describe: "the first LLM provider's baseUrl (a provider named `env` is made if the file has none)",
  },
  { name: 'MYRIAD_LLM_MODEL', path: ['llm', 'providers', 0, 'models'], parse: (raw) => [raw], describe: "the first LLM provider's models: [<model>]" },
  { name: 'MYRIAD_LLM_KEY', path: ['llm', 'providers', 0, 'apiKey'], parse: String, describe: "the first LLM provider's API key", secret: true },
]
