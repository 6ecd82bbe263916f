// The routing policy's options as a zod schema (types inferred, defaults from the Rust core).
import { z } from 'zod'

import { defaults } from '../native/index.js'

const finite = z.number().refine(Number.isFinite, 'must be a finite number')

export const PolicyOptionsSchema = z
  .strictObject({
    sizes: z.array(z.number().int().positive()).min(2).default(defaults.policy.sizes).describe('Layer sizes, input first.'),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .default(defaults.policy.seed)
      .describe('Seed of the initial weights (untrained) and of sampling.'),
    learningRate: finite.positive().default(defaults.policy.learningRate).describe('Adam step size.'),
    baselineDecay: finite.min(0).max(1).default(defaults.policy.baselineDecay).describe('Weight of the newest batch mean in the reward baseline.'),
    entropyBonus: finite.min(0).default(defaults.policy.entropyBonus).describe('Entropy weight that keeps the policy exploring.'),
  })
  .describe('Policy.create(options), Policy.loadOnnx(path, options), Policy.loadSafetensors(path, options)')

export type PolicyOptions = z.input<typeof PolicyOptionsSchema>
