// Server-sent events as OpenAI-compatible servers send them: `data: {...}` events separated by blank
// lines, ending with `data: [DONE]`. Chunks from the socket split events (and UTF-8 characters)
// anywhere, so bytes are decoded as a stream and lines are cut only at newlines.

export class SseDecoder {
  private decoder = new TextDecoder()
  private pending = ''
  private data: string[] = []

  /** Feeds bytes; returns the data payloads of the events they completed. */
  push(bytes: Uint8Array): string[] {
    return this.lines(this.decoder.decode(bytes, { stream: true }))
  }

  /** The stream ended: whatever event was open is complete. */
  end(): string[] {
    const events = this.lines(`${this.decoder.decode()}\n\n`)
    return events
  }

  private lines(text: string): string[] {
    const events: string[] = []
    this.pending += text
    let start = 0
    for (let nl = this.pending.indexOf('\n', start); nl >= 0; nl = this.pending.indexOf('\n', start)) {
      let line = this.pending.slice(start, nl)
      start = nl + 1
      if (line.endsWith('\r')) line = line.slice(0, -1)
      if (line === '') {
        if (this.data.length) events.push(this.data.join('\n'))
        this.data = []
      } else if (line.startsWith('data:')) {
        this.data.push(line.slice(line.charCodeAt(5) === 32 ? 6 : 5))
      }
      // `event:`, `id:`, `retry:` and `:` comments carry nothing an OpenAI-compatible stream needs.
    }
    this.pending = this.pending.slice(start)
    return events
  }
}
