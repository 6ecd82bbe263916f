// The flags that override an experiment file (the last layer of its precedence).
import { type Override, parseOverride } from '../config/index.js'

export const OVERRIDE_FLAGS = {
  set: { type: 'string', multiple: true },
  ticks: { type: 'string' },
  seed: { type: 'string' },
  name: { type: 'string' },
} as const

export const OVERRIDE_USAGE = `overrides:
  --set path=value    any key of the file, e.g. --set clock.mode=async --set llm.concurrency=64
  --ticks N, --seed N, --name NAME   experiment.ticks / .seed / .name`

const number = (raw: string) => (/^-?\d+$/.test(raw) ? Number(raw) : raw)

export function overridesOf(values: { set?: string[]; ticks?: string; seed?: string; name?: string }): Override[] {
  const out: Override[] = (values.set ?? []).map((s) => parseOverride(s))
  if (values.ticks !== undefined) out.push({ path: ['experiment', 'ticks'], value: number(values.ticks), source: '--ticks' })
  if (values.seed !== undefined) out.push({ path: ['experiment', 'seed'], value: number(values.seed), source: '--seed' })
  if (values.name !== undefined) out.push({ path: ['experiment', 'name'], value: values.name, source: '--name' })
  return out
}
