// The generated napi-rs loader (native/index.cjs) picks the right prebuilt binary for this
// platform. It is CommonJS, so it is loaded through require; the package refers to itself by name
// so this works both from the sources (tests) and from the compiled dist/.
import { createRequire } from 'node:module'

import type * as Binding from '@myriad-agents/core/native'

import { MyriadError } from '../errors/index.js'

const require = createRequire(import.meta.url)

export const native: typeof Binding = require('@myriad-agents/core/native')
export type { Binding }

/** The core's defaults for every component's options: the one place they are kept (Rust). */
export const defaults: Binding.NativeOptionDefaults = native.optionDefaults()

/**
 * Every class over a native object has a private constructor and static factories; this guards
 * the constructor against plain JavaScript calling it (TypeScript already refuses), so a misuse is
 * an `ERR_INVALID_ARG` naming the factory instead of a `... is not a function` later on.
 */
export function requireNative<T extends object>(inner: unknown, type: abstract new (...args: never[]) => T, what: string, factory: string): T {
  if (inner instanceof type) return inner
  throw new MyriadError('ERR_INVALID_ARG', `${what} has no public constructor: use ${factory}`)
}
