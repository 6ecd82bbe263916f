// The registry's options as a zod schema (types inferred, defaults from the Rust core).
import { z } from 'zod'

import { defaults } from '../native/index.js'

export const RegistryOptionsSchema = z
  .strictObject({
    window: z.number().int().positive().default(defaults.registry.window).describe('Outcomes per agent that trust is computed from.'),
    dedupeCapacity: z.number().int().positive().default(defaults.registry.dedupeCapacity).describe('Recent msgIds remembered to drop replays.'),
  })
  .describe('Registry.create(options); `index` is passed beside these')

export type RegistrySettings = z.input<typeof RegistryOptionsSchema>
