import { markAsUntransferable } from 'node:worker_threads'

import { callNative, invalidArg } from './errors.js'
import { native, type Binding } from './native.js'
import { buildState, type StateInput } from './policy-state.js'
import { toFloat32 } from './validate.js'

export interface PolicyOptions {
  /** Layer sizes, input first (default [50, 256, 128, 64, 5]). */
  sizes?: number[]
  /** Seed of the initial weights (untrained) and of sampling (default 42). */
  seed?: number
  /** Adam step size (default 3e-4). */
  learningRate?: number
  /** Weight of the newest batch mean in the reward baseline (default 0.1). */
  baselineDecay?: number
  /** Entropy weight that keeps the policy exploring (default 0.01). */
  entropyBonus?: number
}

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
   * heap, an allocation per call (~0.3 us of a ~3 us decision here); views of a buffer that
   * is off the heap already skip that.
   */
  private slab = new Float32Array(0)
  private slabAt = 0

  private constructor(private readonly inner: Binding.Policy) {
    this.actionCount = inner.actions
  }

  static create(options: PolicyOptions = {}): Policy {
    return new Policy(callNative(() => new native.Policy(options)))
  }

  static async loadOnnx(path: string, options: PolicyOptions = {}): Promise<Policy> {
    return new Policy(await callNative(() => native.Policy.loadOnnx(path, options)))
  }

  static async loadSafetensors(path: string, options: PolicyOptions = {}): Promise<Policy> {
    return new Policy(await callNative(() => native.Policy.loadSafetensors(path, options)))
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

  saveSafetensors(path: string): Promise<void> {
    return callNative(() => this.inner.saveSafetensors(path))
  }

  get stateDim(): number {
    return this.inner.stateDim
  }
  get actions(): number {
    return this.actionCount
  }
}
