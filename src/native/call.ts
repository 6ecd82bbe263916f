// Calls into the binding. Its errors arrive with `code` set as a property (see
// crates/myriad-node/src/error.rs) and become `MyriadError`s here, for sync calls and promises alike.
import { ERROR_CODES, type ErrorCode, MyriadError } from '../errors/index.js'

/**
 * napi-rs's own argument conversions (a number where a string belongs) fail before Myriad's code
 * runs, so their `code` is napi's status name rather than one of ours: they are argument errors.
 */
const NAPI_ARGUMENT_STATUSES = new Set([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
  'DateExpected',
  'ArrayBufferExpected',
  'DetachableArraybufferExpected',
])

const isErrorCode = (code: unknown): code is ErrorCode => typeof code === 'string' && Object.hasOwn(ERROR_CODES, code)

/** Turns an error from the native binding into a `MyriadError`; anything else passes through. */
export function fromNative(error: unknown): unknown {
  if (error instanceof MyriadError || !(error instanceof Error)) return error
  const code = (error as { code?: unknown }).code
  if (isErrorCode(code)) return new MyriadError(code, error.message, { cause: error })
  if ((typeof code === 'string' && NAPI_ARGUMENT_STATUSES.has(code)) || error instanceof TypeError) {
    return new MyriadError('ERR_INVALID_ARG', error.message, { cause: error })
  }
  return error
}

/** Calls into the binding, re-throwing its errors as `MyriadError`s (sync calls and promises). */
export function callNative<T>(call: () => T): T {
  let result: T
  try {
    result = call()
  } catch (error) {
    throw fromNative(error)
  }
  if (result instanceof Promise) {
    return result.catch((error: unknown) => {
      throw fromNative(error)
    }) as T
  }
  return result
}
