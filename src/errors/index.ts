/** Every error Myriad throws or rejects with: a plain `Error` with a stable `code`. */
export type ErrorCode =
  | 'ERR_ORT_NOT_FOUND'
  | 'ERR_ORT'
  | 'ERR_PROVIDER_UNAVAILABLE'
  | 'ERR_MODEL_NOT_FOUND'
  | 'ERR_INVALID_MODEL'
  | 'ERR_TOKENIZER'
  | 'ERR_DIMENSION'
  | 'ERR_NOT_FINITE'
  | 'ERR_ZERO_VECTOR'
  | 'ERR_UNKNOWN_ID'
  | 'ERR_INVALID_ARG'
  | 'ERR_EMPTY_INDEX'
  | 'ERR_NO_EMBEDDER'
  | 'ERR_IO'
  | 'ERR_CORRUPT_INDEX'
  | 'ERR_CORRUPT_SNAPSHOT'
  | 'ERR_INVALID_TOPIC'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_BUS_CLOSED'
  | 'ERR_BUS_CONNECT'
  | 'ERR_BUS_REFUSED'
  | 'ERR_SINK_CLOSED'
  | 'ERR_SINK_CONNECT'
  | 'ERR_SINK_WRITE'
  | 'ERR_CORRUPT_ARCHIVE'
  | 'ERR_LLM_TIMEOUT'
  | 'ERR_LLM_RATE_LIMIT'
  | 'ERR_LLM_NETWORK'
  | 'ERR_LLM_SERVER'
  | 'ERR_LLM_REQUEST'
  | 'ERR_LLM_BAD_RESPONSE'
  | 'ERR_LLM_PARSE'
  | 'ERR_LLM_ABORTED'
  | 'ERR_LLM_CIRCUIT_OPEN'
  | 'ERR_LLM_SKIPPED'
  | 'ERR_LLM_BUDGET'
  | 'ERR_LLM_CONFIG'
  | 'ERR_LLM_CLOSED'
  | 'ERR_INTERNAL'

export class MyriadError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'MyriadError'
    this.code = code
  }
}

// The native binding prefixes each message with its code (see crates/myriad-node/src/lib.rs).
const NATIVE_MESSAGE = /^(ERR_[A-Z0-9_]+): ([\s\S]*)$/

/** Turns an error from the native binding into a `MyriadError`; anything else passes through. */
export function fromNative(error: unknown): unknown {
  if (error instanceof MyriadError || !(error instanceof Error)) return error
  const match = NATIVE_MESSAGE.exec(error.message)
  if (match) return new MyriadError(match[1] as ErrorCode, match[2], { cause: error })
  // napi-rs argument conversion errors (a number where a string was expected, ...).
  if ((error as { code?: string }).code === 'InvalidArg' || error instanceof TypeError) {
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

export function invalidArg(message: string): MyriadError {
  return new MyriadError('ERR_INVALID_ARG', message)
}
