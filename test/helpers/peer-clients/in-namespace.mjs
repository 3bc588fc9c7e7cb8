/**
 * Runs inside a private network + mount namespace (see peer-clients.test.ts), where /etc/hosts maps Amazon's
 * hosts to 127.0.0.1: listens on this namespace's own 127.0.0.1:443, carries every connection over the Unix
 * socket SIM_FORWARD_SOCKET to the simulator outside (a filesystem socket crosses network namespaces), and
 * then runs the client named in argv[2], which therefore talks to "sellingpartnerapi-na.amazon.com:443".
 */
import { connect, createServer } from 'node:net'
import { runClient } from './run-client.mjs'

const socketPath = process.env.SIM_FORWARD_SOCKET ?? ''
const forwarder = createServer((inbound) => {
  const outbound = connect(socketPath)
  inbound.pipe(outbound).pipe(inbound)
  inbound.on('error', () => outbound.destroy())
  outbound.on('error', () => inbound.destroy())
})
await new Promise((resolve, reject) => {
  forwarder.once('error', reject)
  forwarder.listen(443, '127.0.0.1', resolve)
})
try {
  process.stdout.write(`${JSON.stringify(await runClient(process.argv[2] ?? ''))}\n`)
} catch (error) {
  const status = error?.response?.status ?? error?.status ?? error?.statusCode
  process.stderr.write(`client failed: ${status ?? ''} ${error?.code ?? ''} ${error?.message ?? error}\n`)
  process.exitCode = 1
} finally {
  forwarder.close()
}
