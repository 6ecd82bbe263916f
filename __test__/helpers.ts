/** Deterministic data for tests and a plain-JS cosine top-k reference. */
export { cosine, mulberry32 } from '../src/testing/math.js'

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
