/**
 * `sp-connect keys …`: encryption keys at rest (see docs/key-rotation.md).
 *
 * - `generate` prints a new key as `id:base64key`, for SP_CONNECT_ENCRYPTION_KEYS.
 * - `status` counts rows under each key id (configured or not), reading key ids only.
 * - `rotate` re-encrypts every row under the primary key. In a dev data folder it first adds a new primary key
 *   to config.json (keeping the old ones); in production the operator has already put the new key first in
 *   SP_CONNECT_ENCRYPTION_KEYS on every instance. Stops cleanly on SIGINT/SIGTERM after the current batch; a
 *   kill at any point leaves every row readable, and running it again finishes the job.
 */
import { randomBytes } from 'node:crypto'
import { constants } from 'node:os'
import cliProgress from 'cli-progress'
import type { Command } from 'commander'
import { generateKeyMaterial, Keyring } from '../../core/crypto/keyring.ts'
import {
  DEFAULT_REENCRYPT_BATCH_SIZE,
  type KeyUsage,
  type ReencryptResult,
  reencryptAll,
  scanKeyUsage,
} from '../../core/crypto/reencrypt.ts'
import { SpConnectError } from '../../domain/errors.ts'
import type { Runtime } from '../../runtime.ts'
import { resolveConfig, type TargetOptions, withRuntime } from '../context.ts'
import { addDevPrimaryKey, devKeyring, readDevPid, resolveDataDir } from '../dev-data.ts'
import { EXIT } from '../exit-codes.ts'
import { printJson, printOutput, printTable } from '../output.ts'

/** Plain progress lines (stderr not a terminal): after the first batch, at every 10%, and at least this often. */
const PLAIN_PROGRESS_INTERVAL_MS = 2000

/** A new key id, `k-<yyyymmdd>-<8 hex>`: sortable by day, unique enough to never clash within a ring. */
function newKeyId(now: Date = new Date()): string {
  const day = now.toISOString().slice(0, 10).replaceAll('-', '')
  return `k-${day}-${randomBytes(4).toString('hex')}`
}

/** A new random key with a new id. */
function generateKey(now?: Date): { id: string; key: string } {
  return { id: newKeyId(now), key: generateKeyMaterial() }
}

export function registerKeyCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description('encryption keys at rest: generate one, see which rows use which key, rotate')

  keys
    .command('generate')
    .description('print a new random key as id:base64key, for SP_CONNECT_ENCRYPTION_KEYS')
    .option('--json', 'print {id, key, entry} as JSON (entry is the id:base64key text)')
    .action((opts: { json?: boolean }) => {
      const { id, key } = generateKey()
      printOutput(opts.json, { id, key, entry: `${id}:${key}` }, () => process.stdout.write(`${id}:${key}\n`))
    })

  keys
    .command('status')
    .description('configured keys, the primary, and how many rows are under each key id')
    .option('--data <dir>', 'dev data folder')
    .option('--json', 'print JSON')
    .action(async (opts: TargetOptions & { json?: boolean }) => {
      await withRuntime(opts, async ({ store, keyring, config }) => {
        const usage = await scanKeyUsage({ store, keyring, appSecretClientIds: [config.lwaClientId] })
        if (opts.json) printJson(usageJson(usage))
        else printUsage(usage)
      })
    })

  keys
    .command('rotate')
    .description(
      're-encrypt every row under the primary key (in a dev data folder, add a new primary key first)',
    )
    .option('--data <dir>', 'dev data folder')
    .option('--batch <n>', 'rows per batch (1-1000)', String(DEFAULT_REENCRYPT_BATCH_SIZE))
    .option('--json', 'print the outcome as JSON (notes go to stderr)')
    .action(async (opts: TargetOptions & { batch: string; json?: boolean }) => {
      const batchSize = Number(opts.batch)
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1000)
        throw new SpConnectError('invalid_request', {
          detail: '--batch must be a whole number from 1 to 1000',
        })
      const config = resolveConfig(opts)
      const devDir = config.mode === 'dev' ? resolveDataDir(opts.data) : undefined
      if (devDir !== undefined) refuseWhileDevServerRuns(devDir)
      await withRuntime(opts, (runtime) => rotate(runtime, devDir, batchSize, opts.json === true))
    })
}

async function rotate(
  runtime: Runtime,
  devDir: string | undefined,
  batchSize: number,
  json: boolean,
): Promise<void> {
  const { store, config } = runtime
  // With --json, stdout carries one JSON document only; the notes go to stderr.
  const note = (text: string) => (json ? process.stderr : process.stdout).write(text)
  let addedKeyId: string | null = null
  const clientIds = [config.lwaClientId]
  let keyring = runtime.keyring
  let usage = await scanKeyUsage({ store, keyring, appSecretClientIds: clientIds })

  if (usage.pending === 0) {
    if (devDir === undefined) {
      process.stderr.write(refusal(usage))
      process.exitCode = EXIT.config
      return
    }
    // Dev folder: the rotation's first half happens here. Only when nothing is left from a previous rotation,
    // so a rerun after a kill finishes that one instead of stacking up keys.
    const key = generateKey()
    keyring = new Keyring(devKeyring(addDevPrimaryKey(devDir, key)))
    addedKeyId = key.id
    note(`Added key "${key.id}" as the primary key in ${devDir}/config.json (older keys kept).\n`)
    usage = await scanKeyUsage({ store, keyring, appSecretClientIds: clientIds })
  } else if (devDir !== undefined) {
    note(
      `Finishing the previous rotation: ${usage.pending} row(s) are not yet under the primary key "${keyring.primaryKeyId}". ` +
        'Run `keys rotate` again afterwards for a new key.\n',
    )
  }

  const controller = new AbortController()
  let stoppedBy: NodeJS.Signals | undefined
  const progress = progressReporter(usage.rows)
  const onSignal = (signal: NodeJS.Signals) => {
    if (stoppedBy !== undefined) {
      // Second signal: stop now. Every row is written atomically, so this too leaves everything readable.
      progress.stop()
      process.stderr.write(`${signal} again: stopping now; run \`keys rotate\` again to finish.\n`)
      process.exit(128 + constants.signals[signal])
    }
    stoppedBy = signal
    progress.note(`${signal} received: stopping after the current batch (send it again to stop at once).`)
    controller.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  let result: ReencryptResult
  try {
    result = await reencryptAll({
      store,
      keyring,
      appSecretClientIds: clientIds,
      batchSize,
      total: usage.rows,
      signal: controller.signal,
      onProgress: (done) => progress.update(done),
    })
  } finally {
    progress.stop()
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  if (json)
    printJson({
      primary_key_id: keyring.primaryKeyId,
      added_key_id: addedKeyId,
      completed: result.completed,
      scanned: result.scanned,
      reencrypted: result.reencrypted,
      skipped: result.skipped,
      conflicts: result.conflicts,
      unavailable: result.unavailable,
      unavailable_key_ids: result.unavailableKeyIds,
      failed: result.failed,
      unfinished: result.unfinished,
    })
  else report(result, keyring.primaryKeyId)
  if (!result.completed) process.exitCode = 128 + constants.signals[stoppedBy ?? 'SIGINT']
  else if (result.unfinished > 0) process.exitCode = EXIT.failure
}

function refusal(usage: KeyUsage): string {
  const lines = [
    `Nothing to rotate: every readable row is already under the primary key "${usage.primaryKeyId}".`,
    'To rotate, run `sp-connect keys generate`, put the new key FIRST in SP_CONNECT_ENCRYPTION_KEYS (keep the',
    'old ones after it) on every instance, restart them, then run `sp-connect keys rotate` again.',
  ]
  if (usage.unavailable > 0) lines.push(unavailableWarning(usage.unavailable, unknownKeyIds(usage)))
  return `${lines.join('\n')}\n`
}

function report(result: ReencryptResult, primaryKeyId: string): void {
  if (!result.completed) {
    process.stdout.write(
      `Stopped after ${result.scanned} row(s): ${result.reencrypted} re-encrypted under "${primaryKeyId}". ` +
        'Every row is readable; run `keys rotate` again to finish.\n',
    )
    return
  }
  process.stdout.write(
    `Re-encrypted ${result.reencrypted} row(s) under "${primaryKeyId}"; ${result.skipped} already under it ` +
      `or without tokens; ${result.conflicts} concurrent write(s) retried. ${result.scanned} row(s) in all.\n`,
  )
  if (result.unfinished > 0)
    process.stderr.write(
      `${result.unfinished} row(s) kept changing while we re-encrypted them: run \`keys rotate\` again.\n`,
    )
  if (result.unavailable > 0)
    process.stderr.write(`${unavailableWarning(result.unavailable, result.unavailableKeyIds)}\n`)
  if (result.failed > 0)
    process.stderr.write(
      `${result.failed} row(s) hold a ciphertext that fails its integrity check: left as they are ` +
        '(restore them from a backup, or revoke them and have the sellers authorize again).\n',
    )
}

function unavailableWarning(rows: number, keyIds: readonly string[]): string {
  return (
    `${rows} row(s) are under key(s) not in the keyring (${keyIds.map((id) => `"${id}"`).join(', ')}): ` +
    'left as they are; they fail with key_unavailable until that key is configured again.'
  )
}

function unknownKeyIds(usage: KeyUsage): string[] {
  return usage.keys.filter((k) => !k.configured).map((k) => k.id)
}

/**
 * The dev server keeps the keyring it started with in memory, so it could not read rows re-encrypted under a
 * key added while it runs. dev.json names its pid.
 */
function refuseWhileDevServerRuns(dir: string): void {
  const pid = readDevPid(dir)
  if (pid === undefined || pid === process.pid || !isAlive(pid)) return
  throw new Error(
    `sp-connect dev seems to be running on ${dir} (pid ${pid}); stop it first: it keeps the old keyring in memory. ` +
      `If it is not running, delete ${dir}/dev.json.`,
  )
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

interface ProgressReporter {
  update(done: number): void
  /** A message between progress output (kept off the bar's line). */
  note(message: string): void
  stop(): void
}

/** A bar on a terminal; otherwise plain lines: after the first batch, at every 10%, every couple of seconds. */
function progressReporter(total: number): ProgressReporter {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream: process.stderr,
        format: 'Re-encrypting |{bar}| {percentage}% | {value}/{total} rows | ETA {eta_formatted}',
        hideCursor: true,
        etaBuffer: 50,
      },
      cliProgress.Presets.shades_classic,
    )
    let running = true
    bar.start(Math.max(total, 1), 0)
    return {
      update(done) {
        if (done > bar.getTotal()) bar.setTotal(done)
        bar.update(done)
      },
      note(message) {
        process.stderr.write(`\n${message}\n`)
      },
      stop() {
        if (running) bar.stop()
        running = false
      },
    }
  }
  let lastAt: number | undefined
  let lastTenth = -1
  return {
    update(done) {
      const now = Date.now()
      const percent = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100
      const tenth = Math.floor(percent / 10)
      const due = lastAt === undefined || now - lastAt >= PLAIN_PROGRESS_INTERVAL_MS || tenth > lastTenth
      if (!due) return
      lastAt = now
      lastTenth = tenth
      process.stderr.write(`re-encrypting: ${done}/${total} rows (${percent}%)\n`)
    },
    note(message) {
      process.stderr.write(`${message}\n`)
    },
    stop() {},
  }
}

function usageJson(usage: KeyUsage) {
  return {
    primary_key_id: usage.primaryKeyId,
    keys: usage.keys.map((k) => ({
      id: k.id,
      configured: k.configured,
      primary: k.primary,
      connections: k.connections,
      app_secrets: k.appSecrets,
    })),
    rows: usage.rows,
    connections_without_tokens: usage.connectionsWithoutTokens,
    pending: usage.pending,
    unavailable: usage.unavailable,
    malformed: usage.malformed,
  }
}

function printUsage(usage: KeyUsage): void {
  process.stdout.write(`Primary key: ${usage.primaryKeyId}\n\n`)
  printTable([
    ['KEY', 'CONFIGURED', 'PRIMARY', 'CONNECTIONS', 'APP SECRETS'],
    ...usage.keys.map((k) => [
      k.id,
      k.configured ? 'yes' : 'NO',
      k.primary ? 'yes' : 'no',
      String(k.connections),
      String(k.appSecrets),
    ]),
  ])
  const lines = [
    '',
    `${usage.rows} row(s), ${usage.connectionsWithoutTokens} of them connections without tokens (disconnected).`,
  ]
  if (usage.pending > 0)
    lines.push(`${usage.pending} row(s) are still under an older key: run \`sp-connect keys rotate\`.`)
  const removable = usage.keys.filter((k) => k.configured && !k.primary && k.connections + k.appSecrets === 0)
  if (removable.length > 0)
    lines.push(
      `No row is under ${removable.map((k) => `"${k.id}"`).join(', ')}: it may be removed from the keyring ` +
        '(keep a copy for as long as backups from before the rotation exist).',
    )
  if (usage.unavailable > 0) lines.push(unavailableWarning(usage.unavailable, unknownKeyIds(usage)))
  if (usage.malformed > 0) lines.push(`${usage.malformed} ciphertext(s) are not in a known format.`)
  process.stdout.write(`${lines.join('\n')}\n`)
}
