/**
 * Request bodies are read through here, bounded: a declared length over the bound is refused before a byte is
 * read, and a chunked body stops being read the moment it passes the bound (413 `payload_too_large`).
 */
import type { Context } from 'hono'
import { readUpTo } from '../core/read-capped.ts'
import { SpConnectError } from '../domain/errors.ts'

/** The request body's bytes, at most `maxBytes`. */
export async function readBodyCapped(c: Context, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const declared = c.req.header('content-length')
  if (declared !== undefined && !(Number(declared) <= maxBytes)) throw new SpConnectError('payload_too_large')
  const bytes = await readUpTo(c.req.raw.body, maxBytes)
  if (bytes === undefined) throw new SpConnectError('payload_too_large')
  return bytes
}

/** The request body as UTF-8 text, at most `maxBytes`. */
export async function readTextCapped(c: Context, maxBytes: number): Promise<string> {
  return new TextDecoder().decode(await readBodyCapped(c, maxBytes))
}
