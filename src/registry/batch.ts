// How a batch of PML messages crosses to Rust: joined into as few strings as V8 allows.
import type { PmlMessage } from './pml.js'

/** A message's text; what JSON cannot represent (undefined) becomes text that is rejected as bad JSON. */
export const encode = (m: string | PmlMessage): string => (typeof m === 'string' ? m : (JSON.stringify(m) ?? String(m)))

/** Longest string a batch crosses in (V8 caps a string at ~2^29 characters); a longer batch goes in parts. */
export const MAX_JOINED_CHARS = 2 ** 28

/** Part of a batch as it crosses to Rust: its messages joined, and each one's length in UTF-16 units. */
export interface JoinedPart {
  text: string
  lengths: Uint32Array
}

/**
 * A batch as it crosses to Rust: one joined string per part (one part unless it passes `limit`
 * characters; a longer message goes alone). Reading many strings one by one through N-API costs the
 * JS thread more than parsing them (docs/benchmarks/registry.md); a joined string is a single read.
 */
export function joinBatch(texts: string[], limit = MAX_JOINED_CHARS): JoinedPart[] {
  const parts: JoinedPart[] = []
  let start = 0
  do {
    let end = start
    let total = 0
    while (end < texts.length && (end === start || total + texts[end].length <= limit)) total += texts[end++].length
    const lengths = new Uint32Array(end - start)
    for (let i = start; i < end; i++) lengths[i - start] = texts[i].length
    const text = start === 0 && end === texts.length ? texts.join('') : texts.slice(start, end).join('')
    parts.push({ text, lengths })
    start = end
  } while (start < texts.length)
  return parts
}
