// Every error Myriad throws or rejects with is a `MyriadError` with a stable `code`. The codes are
// one list, kept where most errors are made (crates/myriad-core/src/error.rs) and generated into
// codes.ts (`npm run generate`).
export { MyriadError } from './error.js'
export { ERROR_CODES, type ErrorCode, type ErrorComponent, type PmlErrorCode } from './codes.js'
export { assertStrings, invalidArg, parseOptions, toFloat32 } from './args.js'
