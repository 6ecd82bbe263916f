import { native } from '../native/index.js'

/** The SIMD kernels the index scan uses on this CPU, e.g. `avx2+fma+f16c` or `portable`. */
export function simdKernels(): string {
  return native.simdKernels()
}
