/** Reads all of stdin (refresh tokens are read this way so they never appear in argv or shell history). */
export async function readStdin(maxBytes = 16 * 1024): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Paste the refresh token, then press Ctrl-D:\n')
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin) {
    const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk))
    size += buffer.length
    if (size > maxBytes) throw new Error('stdin is larger than expected for a refresh token')
    chunks.push(buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
