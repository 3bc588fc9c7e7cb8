/**
 * Request bodies that can be sent again, and response bodies read with a size cap.
 *
 * A retry must resend the same bytes, so a body given as a string or bytes is kept as is. A stream is read
 * up to a cap: if it ends within it, it is kept as bytes and can be retried like any other; if it is larger,
 * it is streamed on once and never replayed: no retry after it may have been sent. The one exception is a
 * connection that failed before fetch read a single chunk of it, which is detected by counting pulls.
 */

import { SpConnectError } from '../../domain/errors.ts'
import { concatBytes, readUpTo } from '../read-capped.ts'

export type SpApiBody = string | Uint8Array | ReadableStream<Uint8Array> | null | undefined

export interface RequestBody {
  /** The body for one attempt; throws if a streamed body was already (partly) consumed. */
  forAttempt(): string | Uint8Array | ReadableStream<Uint8Array> | null
  /** True when another attempt could send the same bytes. */
  replayable(): boolean
  /** Bytes read from a stream into memory here (a string or bytes given as such are the caller's: 0). */
  readonly bufferedBytes: number
}

class FixedBody implements RequestBody {
  readonly #value: string | Uint8Array | null
  readonly bufferedBytes: number
  constructor(value: string | Uint8Array | null, bufferedBytes = 0) {
    this.#value = value
    this.bufferedBytes = bufferedBytes
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
  readonly bufferedBytes: number
  #pulled = false
  #sent = 0

  constructor(
    prefix: Uint8Array[],
    reader: ReadableStreamDefaultReader<Uint8Array>,
    maxBytes: number,
    bufferedBytes: number,
  ) {
    this.#prefix = prefix
    this.#reader = reader
    this.#maxBytes = maxBytes
    this.bufferedBytes = bufferedBytes
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
    if (done) return new FixedBody(chunks.length === 0 ? null : concatBytes(chunks, size), size)
    chunks.push(value)
    size += value.byteLength
    if (size > replayBytes) return new StreamedBody(chunks, reader, maxBytes, size)
  }
}

/**
 * A process-wide allowance of request-body bytes buffered at once. A call reserves the most its stream may
 * leave in memory before reading any of it, keeps what it actually buffered until it ends, and gives it back
 * then: calls queued for a turn cannot pile up request bodies beyond this, whatever their number.
 */
export class BufferBudget {
  readonly #limit: number
  #used = 0

  constructor(limit: number) {
    this.#limit = limit
  }

  /** Bytes reserved right now. */
  get used(): number {
    return this.#used
  }

  /** Reserves `bytes`; false (nothing reserved) when that would pass the limit. */
  tryReserve(bytes: number): boolean {
    if (this.#used + bytes > this.#limit) return false
    this.#used += bytes
    return true
  }

  /**
   * Turns a reservation of `from` bytes into one of `to`: what the call actually buffered, less than reserved
   * for a short body, or more by the one chunk that showed a stream was long (already in memory: counted, so
   * the next reservations see it).
   */
  resize(from: number, to: number): void {
    this.#used = Math.max(0, this.#used - from + to)
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes)
  }
}

/** Reads an SP-API answer into bytes, refusing more than `maxBytes` (the stream is cancelled then). */
export async function readCapped(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<Uint8Array> {
  const bytes = await readUpTo(body, maxBytes)
  if (bytes === undefined)
    throw new SpConnectError('spapi_unreachable', { detail: 'SP-API response too large' })
  return bytes
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
