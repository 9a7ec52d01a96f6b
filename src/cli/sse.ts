/**
 * A server-sent events reader (the text/event-stream format of the HTML standard): lines of
 * `field: value`, an event dispatched at each blank line, `:` lines are comments (keep-alives).
 */

/** One dispatched event. */
export interface SseEvent {
  /** The `event:` field; 'message' when absent. */
  readonly event: string
  /** The `data:` lines joined with '\n'. */
  readonly data: string
  /** The `id:` field of this event, when it had one. */
  readonly id: string | undefined
}

/** Parses a byte stream into events. An event not ended by a blank line before the stream ends is dropped. */
export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder()
  let buffer = ''
  let event = ''
  let data: string[] = []
  let id: string | undefined
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true })
    let start = 0
    for (;;) {
      const nl = nextLineEnd(buffer, start)
      if (nl === -1) break
      const line = buffer.slice(start, nl)
      // A CR at the end of the buffer may be the first half of CRLF: wait for the next chunk.
      if (buffer[nl] === '\r' && nl + 1 === buffer.length) break
      start = nl + (buffer[nl] === '\r' && buffer[nl + 1] === '\n' ? 2 : 1)
      if (line === '') {
        if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id }
        event = ''
        data = []
        id = undefined
        continue
      }
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon === -1 ? line : line.slice(0, colon)
      let value = colon === -1 ? '' : line.slice(colon + 1)
      if (value.startsWith(' ')) value = value.slice(1)
      if (field === 'data') data.push(value)
      else if (field === 'event') event = value
      else if (field === 'id' && !value.includes('\0')) id = value
    }
    buffer = buffer.slice(start)
  }
}

function nextLineEnd(s: string, from: number): number {
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c === 10 || c === 13) return i
  }
  return -1
}
