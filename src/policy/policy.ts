import { markAsUntransferable } from 'node:worker_threads'

import { invalidArg, parseOptions, toFloat32 } from '../errors/index.js'
import { type Binding, callNative, native, requireNative } from '../native/index.js'
import { type PolicyOptions, PolicyOptionsSchema } from './options.js'
import { buildState, type StateInput } from './state.js'

const settings = (options: PolicyOptions | undefined) => parseOptions(PolicyOptionsSchema, options, 'Policy options')

export interface DecideOptions {
  /** Sample from softmax(logits / temperature); without it the choice is greedy. */
  temperature?: number
}

export interface TransitionBatch {
  /** n x stateDim floats. */
  states: Float32Array
  actions: Uint32Array | number[]
  rewards: Float32Array | number[]
}

/** Decisions whose probabilities one buffer holds (5 actions: 20 KB). */
const SLAB_DECISIONS = 1024

/**
 * Routes a request among its top-k candidates: an MLP (50 -> 256 -> 128 -> 64 -> 5, ReLU) in Rust,
 * learning online with REINFORCE and a baseline. New policies are untrained (seeded weights).
 */
export class Policy {
  /** Cached: reading it through N-API on every decision would cost more than the decision. */
  private readonly actionCount: number
  /**
   * Where `decide` writes its probabilities: each decision gets its own view of this buffer. A
   * Float32Array of 5 lives on V8's heap, and handing one to native code first moves it off the
   * heap, an allocation per call (a tenth of a decision, docs/benchmarks/policy.md); views
   * of a buffer that is off the heap already skip that.
   */
  private slab = new Float32Array(0)
  private slabAt = 0

  private readonly inner: Binding.NativePolicy

  private constructor(inner: Binding.NativePolicy) {
    this.inner = requireNative(inner, native.NativePolicy, 'Policy', 'Policy.create(options), Policy.loadOnnx(path) or Policy.loadSafetensors(path)')
    this.actionCount = inner.actions
  }

  static create(options?: PolicyOptions): Policy {
    const parsed = settings(options)
    return new Policy(callNative(() => native.NativePolicy.create(parsed)))
  }

  static async loadOnnx(path: string, options?: PolicyOptions): Promise<Policy> {
    const parsed = settings(options)
    return new Policy(await callNative(() => native.NativePolicy.loadOnnx(path, parsed)))
  }

  static async loadSafetensors(path: string, options?: PolicyOptions): Promise<Policy> {
    const parsed = settings(options)
    return new Policy(await callNative(() => native.NativePolicy.loadSafetensors(path, parsed)))
  }

  /**
   * A policy's whole learning state written by `saveState`: weights, Adam's moments, the reward
   * baseline and the sampling stream, so it decides and learns on exactly as the saved one would.
   * A damaged file or another kind of file is `ERR_CHECKPOINT_CORRUPT`.
   */
  static async loadState(path: string): Promise<Policy> {
    if (typeof path !== 'string') throw invalidArg('path must be a string')
    return new Policy(await callNative(() => native.NativePolicy.loadState(path)))
  }

  /**
   * One decision on the calling thread; `state` is a built state or what to build it from.
   * `probs` is the decision's own, a view of `actions` floats into a buffer that later decisions'
   * views share (as small Buffers share Node's pool).
   */
  decide(state: Float32Array | StateInput, options?: DecideOptions): { action: number; probs: Float32Array } {
    const vector = state instanceof Float32Array ? state : buildState(state).state
    const n = this.actionCount
    if (this.slabAt + n > this.slab.length) {
      this.slab = new Float32Array(n * SLAB_DECISIONS)
      // As Node does for its Buffer pool: a postMessage that lists one decision's buffer for
      // transfer copies it instead of detaching every other decision's probabilities.
      markAsUntransferable(this.slab.buffer)
      this.slabAt = 0
    }
    const probs = this.slab.subarray(this.slabAt, (this.slabAt += n))
    const action = callNative(() => this.inner.decideInto(vector, probs, options?.temperature))
    return { action, probs }
  }

  /** Decisions for n states (n x stateDim floats), off the JS thread. */
  decideBatch(states: Float32Array, options?: DecideOptions): Promise<Binding.BatchDecision> {
    return callNative(() => this.inner.decideBatch(toFloat32(states, 'states'), options))
  }

  /** One REINFORCE step over a batch of (state, action, reward). */
  update(batch: TransitionBatch): Promise<Binding.PolicyUpdateStats> {
    if (!batch || !(batch.states instanceof Float32Array)) throw invalidArg('update takes { states: Float32Array, actions, rewards }')
    const actions = batch.actions instanceof Uint32Array ? batch.actions : Uint32Array.from(batch.actions)
    const rewards = toFloat32(batch.rewards, 'rewards')
    return callNative(() => this.inner.update(batch.states, actions, rewards))
  }

  /** Writes the weights as an ONNX model (input `state`, output `logits`). */
  exportOnnx(path: string): Promise<void> {
    return callNative(() => this.inner.exportOnnx(path))
  }

  /** Writes the weights only (an untrained optimiser and a fresh stream when loaded). */
  saveSafetensors(path: string): Promise<void> {
    return callNative(() => this.inner.saveSafetensors(path))
  }

  /** Writes the whole learning state (see `loadState`), atomically: what checkpoints hold. */
  saveState(path: string): Promise<void> {
    return callNative(() => this.inner.saveState(path))
  }

  get stateDim(): number {
    return this.inner.stateDim
  }
  get actions(): number {
    return this.actionCount
  }
}
