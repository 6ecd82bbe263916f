// The generated napi-rs loader (native/index.cjs) picks the right prebuilt binary for this
// platform. It is CommonJS, so it is loaded through require; the package refers to itself by name
// so this works both from the sources (tests) and from the compiled dist/.
import { createRequire } from 'node:module'

import type * as Binding from '@myriad-agents/core/native'

const require = createRequire(import.meta.url)

export const native: typeof Binding = require('@myriad-agents/core/native')
export type { Binding }
