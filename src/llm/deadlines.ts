// Every call's deadline behind one timer: calls in deadline order in an intrusive linked list, the
// timer set for the first. A Timeout object and a closure per call cost more CPU and garbage than
// the whole rest of the call's bookkeeping at thousands of calls in flight.

export interface Expiring {
  readonly deadline: number
  prevDue: Expiring | undefined
  nextDue: Expiring | undefined
  /** Linked into a queue now. */
  queued: boolean
  expire(): void
}

export class DeadlineQueue {
  private head: Expiring | undefined
  private tail: Expiring | undefined
  private timer: ReturnType<typeof setTimeout> | undefined
  private timerAt = Infinity

  add(item: Expiring): void {
    // Calls with the same timeout arrive in deadline order: the walk back from the tail stops at once.
    let after = this.tail
    while (after && after.deadline > item.deadline) after = after.prevDue
    item.prevDue = after
    item.nextDue = after ? after.nextDue : this.head
    if (item.nextDue) item.nextDue.prevDue = item
    else this.tail = item
    if (after) after.nextDue = item
    else this.head = item
    item.queued = true
    if (item.deadline < this.timerAt) this.arm(item.deadline)
  }

  remove(item: Expiring): void {
    if (!item.queued) return
    if (item.prevDue) item.prevDue.nextDue = item.nextDue
    else this.head = item.nextDue
    if (item.nextDue) item.nextDue.prevDue = item.prevDue
    else this.tail = item.prevDue
    item.prevDue = item.nextDue = undefined
    item.queued = false
    // An armed timer would keep the process alive with nothing left to time.
    if (!this.head) this.disarm()
  }

  private readonly fire = () => {
    this.timer = undefined
    this.timerAt = Infinity
    const now = performance.now()
    // Timers may fire up to a millisecond early by performance.now()'s clock.
    while (this.head && this.head.deadline <= now + 1) {
      const item = this.head
      this.remove(item)
      item.expire()
    }
    if (this.head) this.arm(this.head.deadline)
  }

  private arm(at: number) {
    this.disarm()
    this.timerAt = at
    this.timer = setTimeout(this.fire, Math.max(0, at - performance.now()))
  }

  private disarm() {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.timerAt = Infinity
  }
}
