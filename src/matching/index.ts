// Semantic matching: the SBERT embedder and the exact cosine top-k index over agents' specialties.
export { Embedder, DEFAULT_MODEL } from './embedder.js'
export { SemanticIndex, type SemanticIndexOptions, type Match, type UpsertResult } from './semantic-index.js'
export { simdKernels } from './kernels.js'
export { EmbedderOptionsSchema, SemanticIndexOptionsSchema, type EmbedderOptions } from './options.js'
