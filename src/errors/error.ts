import type { ErrorCode } from './codes.js'

/** What every error Myriad throws or rejects with is: a plain `Error` with a stable `code`. */
export class MyriadError extends Error {
  readonly code: ErrorCode
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'MyriadError'
    this.code = code
  }
}
