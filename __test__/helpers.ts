/** Deterministic data for tests: a seeded PRNG and a plain-JS cosine reference. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function randomVectors(rand: () => number, n: number, dim: number): Float32Array {
  const out = new Float32Array(n * dim)
  for (let i = 0; i < out.length; i++) out[i] = rand() * 2 - 1
  return out
}

/** Cosine top-k by definition, in float64, best first (ties to the earlier row). */
export function bruteForceTopK(rows: Float32Array, ids: string[], query: Float32Array, k: number) {
  const dim = query.length
  let qn = 0
  for (let j = 0; j < dim; j++) qn += query[j] * query[j]
  const scored = ids.map((id, i) => {
    let dot = 0
    let rn = 0
    for (let j = 0; j < dim; j++) {
      const v = rows[i * dim + j]
      dot += v * query[j]
      rn += v * v
    }
    return { id, score: dot / Math.sqrt(rn * qn), i }
  })
  scored.sort((a, b) => b.score - a.score || a.i - b.i)
  return scored.slice(0, k).map(({ id, score }) => ({ id, score }))
}

export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let dot = 0
  let na = 0
  let nb = 0
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i]
    na += a[i] * a[i]
    nb += b[i] * b[i]
  }
  return dot / Math.sqrt(na * nb)
}
