/**
 * Request bodies that can be sent again, and response bodies read with a size cap.
 *
 * A retry must resend the same bytes, so a body given as a string or bytes is kept as is. A stream is read
 * up to a cap: if it ends within it, it is kept as bytes and can be retried like any other; if it is larger,
 * it is streamed on once and never replayed: no retry after it may have been sent. The one exception is a
 * connection that failed before fetch read a single chunk of it, which is detected by counting pulls.
 */
import { SpConnectError } from '../../domain/errors.ts'

export type SpApiBody = string | Uint8Array | ReadableStream<Uint8Array> | null | undefined

export interface RequestBody {
  /** The body for one attempt; throws if a streamed body was already (partly) consumed. */
  forAttempt(): string | Uint8Array | ReadableStream<Uint8Array> | null
  /** True when another attempt could send the same bytes. */
  replayable(): boolean
}

class FixedBody implements RequestBody {
  readonly #value: string | Uint8Array | null
  constructor(value: string | Uint8Array | null) {
    this.#value = value
  }
  forAttempt() {
    return this.#value
  }
  replayable() {
    return true
  }
}

/** A large stream: its first chunks (read to find out it was large), then the rest from the reader. */
class StreamedBody implements RequestBody {
  readonly #prefix: Uint8Array[]
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>
  readonly #maxBytes: number
  #pulled = false
  #sent = 0

  constructor(prefix: Uint8Array[], reader: ReadableStreamDefaultReader<Uint8Array>, maxBytes: number) {
    this.#prefix = prefix
    this.#reader = reader
    this.#maxBytes = maxBytes
  }

  replayable() {
    return !this.#pulled
  }

  forAttempt(): ReadableStream<Uint8Array> {
    if (this.#pulled) throw new Error('streamed body already consumed')
    let index = 0
    return new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        this.#pulled = true
        const chunk = index < this.#prefix.length ? this.#prefix[index++] : await this.#next()
        if (chunk === undefined) return controller.close()
        this.#sent += chunk.byteLength
        if (this.#sent > this.#maxBytes) {
          await this.#reader.cancel().catch(() => {})
          return controller.error(new SpConnectError('payload_too_large'))
        }
        controller.enqueue(chunk)
      },
      cancel: (reason) => this.#reader.cancel(reason),
    })
  }

  async #next(): Promise<Uint8Array | undefined> {
    const { done, value } = await this.#reader.read()
    return done ? undefined : value
  }
}

/**
 * Prepares `body` for sending, possibly more than once. A stream is read until it ends or passes
 * `replayBytes`; `maxBytes` bounds what a streamed body may send in all.
 */
export async function prepareBody(
  body: SpApiBody,
  replayBytes: number,
  maxBytes: number,
): Promise<RequestBody> {
  if (body === undefined || body === null) return new FixedBody(null)
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const size = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength
    if (size > maxBytes) throw new SpConnectError('payload_too_large')
    return new FixedBody(body)
  }
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return new FixedBody(concat(chunks, size))
    chunks.push(value)
    size += value.byteLength
    if (size > replayBytes) return new StreamedBody(chunks, reader, maxBytes)
  }
}

function concat(chunks: Uint8Array[], size: number): Uint8Array | null {
  if (chunks.length === 0) return null
  if (chunks.length === 1) return chunks[0] ?? null
  const out = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    out.set(chunk, at)
    at += chunk.byteLength
  }
  return out
}

/** Reads a body into bytes, refusing more than `maxBytes` (the stream is cancelled then). */
export async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0)
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return concat(chunks, size) ?? new Uint8Array(0)
    size += value.byteLength
    if (size > maxBytes) {
      await reader.cancel().catch(() => {})
      throw new SpConnectError('spapi_unreachable', { detail: 'SP-API response too large' })
    }
    chunks.push(value)
  }
}

/** A one-shot stream over bytes already read. */
export function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      if (bytes.byteLength > 0) controller.enqueue(bytes)
      controller.close()
    },
  })
}
