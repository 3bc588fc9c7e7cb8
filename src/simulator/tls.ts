/**
 * HTTPS for the simulator: a local certificate authority kept in the simulator's data folder (so a client
 * trusts it once through `NODE_EXTRA_CA_CERTS`) and, at every start, a fresh leaf certificate for every
 * Amazon host the simulator serves plus localhost. The CA's key stays in the data folder (0600); the leaf's
 * key lives only in memory. Neither key is ever logged or printed.
 *
 * The CA carries X.509 name constraints limited to those hosts, so even a stolen CA key cannot mint a
 * certificate that a client trusting it would accept for any other site.
 */
// @peculiar/x509 resolves its parsers through tsyringe, which needs the Reflect metadata API loaded first.
import 'reflect-metadata'
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { AsnConvert } from '@peculiar/asn1-schema'
import {
  GeneralName as AsnGeneralName,
  GeneralSubtree,
  GeneralSubtrees,
  id_ce_nameConstraints,
  NameConstraints,
} from '@peculiar/asn1-x509'
import * as x509 from '@peculiar/x509'
import { allCentralHosts, SPAPI_HOSTS } from '../domain/regions.ts'
import { LWA_HOST } from './routes.ts'

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const
const DAY_MS = 86_400_000
const CA_LIFETIME_MS = 825 * DAY_MS
const LEAF_LIFETIME_MS = 90 * DAY_MS
/** A CA closer than this to its end is replaced, so a started simulator never outlives its CA. */
const CA_RENEW_BEFORE_MS = LEAF_LIFETIME_MS + DAY_MS
const CA_CERT_FILE = 'simulator-ca.pem'
export const CA_KEY_FILE = 'simulator-ca.key'
const LOCAL_NAMES = ['localhost'] as const
const LOCAL_IPS = ['127.0.0.1', '::1'] as const

x509.cryptoProvider.set(globalThis.crypto)

/** Every Amazon host the simulator answers for (LWA, SP-API production and sandbox, Seller/Vendor Central). */
export function simulatedAmazonHosts(): readonly string[] {
  const spapi = Object.values(SPAPI_HOSTS).flatMap((h) => [h.production, h.sandbox])
  return [...new Set([LWA_HOST, ...spapi, ...allCentralHosts()])].sort()
}

const AMAZON_HOSTS: ReadonlySet<string> = new Set(simulatedAmazonHosts())

/** Exact, case-insensitive match against the served Amazon hosts (a trailing root dot is accepted). */
export function isSimulatedAmazonHost(host: string): boolean {
  return AMAZON_HOSTS.has(host.toLowerCase().replace(/\.$/, ''))
}

export interface SimulatorTls {
  /** Absolute path of the CA certificate (PEM), for `NODE_EXTRA_CA_CERTS`. */
  readonly caCertPath: string
  readonly caCertPem: string
  /** Leaf certificate followed by the CA, as a TLS server sends it. */
  readonly certChainPem: string
  /** The leaf's private key (PEM, PKCS#8). Keep it in memory; never log it. */
  readonly keyPem: string
  /** True when this start created the CA (clients must trust the new file). */
  readonly createdCa: boolean
}

function pemPrivateKey(der: ArrayBuffer): string {
  return x509.PemConverter.encode(der, 'PRIVATE KEY')
}

function nameConstraintsExtension(): x509.Extension {
  const dns = [...AMAZON_HOSTS, ...LOCAL_NAMES].map(
    (name) => new GeneralSubtree({ base: new AsnGeneralName({ dNSName: name }) }),
  )
  // An iPAddress constraint is an address range (RFC 5280 §4.2.1.10): loopback hosts only.
  const ips = ['127.0.0.1/32', '::1/128'].map(
    (cidr) => new GeneralSubtree({ base: new AsnGeneralName({ iPAddress: cidr }) }),
  )
  const value = AsnConvert.serialize(
    new NameConstraints({ permittedSubtrees: new GeneralSubtrees([...dns, ...ips]) }),
  )
  return new x509.Extension(id_ce_nameConstraints, true, value)
}

async function createCa(now: number): Promise<{ certPem: string; keyPem: string }> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=sp-connect simulator local CA ${new Date(now).toISOString().slice(0, 10)}, O=sp-connect`,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + CA_LIFETIME_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      nameConstraintsExtension(),
    ],
  })
  const der = await crypto.subtle.exportKey('pkcs8', keys.privateKey)
  return { certPem: cert.toString('pem'), keyPem: pemPrivateKey(der) }
}

/** The saved CA when it is readable, still valid long enough and its key matches; otherwise undefined. */
async function loadCa(
  certPath: string,
  keyPath: string,
  now: number,
): Promise<{ cert: x509.X509Certificate; key: CryptoKey; certPem: string } | undefined> {
  if (!existsSync(certPath) || !existsSync(keyPath)) return undefined
  try {
    const certPem = readFileSync(certPath, 'utf8')
    const cert = new x509.X509Certificate(certPem)
    if (cert.notAfter.getTime() - now < CA_RENEW_BEFORE_MS) return undefined
    const [der] = x509.PemConverter.decode(readFileSync(keyPath, 'utf8'))
    if (der === undefined) return undefined
    const key = await crypto.subtle.importKey('pkcs8', der, ALGORITHM, false, ['sign'])
    return { cert, key, certPem }
  } catch {
    return undefined
  }
}

/**
 * Loads the CA from `dataDir` (creating the folder, the CA and its key when missing, expiring or unreadable)
 * and issues a leaf certificate for the simulated Amazon hosts, localhost, 127.0.0.1 and ::1.
 */
export async function prepareSimulatorTls(dataDir: string, now: number = Date.now()): Promise<SimulatorTls> {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const caCertPath = join(dataDir, CA_CERT_FILE)
  const caKeyPath = join(dataDir, CA_KEY_FILE)
  let ca = await loadCa(caCertPath, caKeyPath, now)
  let createdCa = false
  if (!ca) {
    const fresh = await createCa(now)
    // Key first and private from the start: a crash in between leaves no readable key behind.
    writeFileSync(caKeyPath, fresh.keyPem, { mode: 0o600 })
    chmodSync(caKeyPath, 0o600)
    writeFileSync(caCertPath, fresh.certPem, { mode: 0o644 })
    ca = await loadCa(caCertPath, caKeyPath, now)
    if (!ca) throw new Error('The simulator could not read back the CA it just wrote.')
    createdCa = true
  }

  const leafKeys = await crypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])
  const names: x509.JsonGeneralName[] = [
    ...[...AMAZON_HOSTS, ...LOCAL_NAMES].map((value) => ({ type: 'dns' as const, value })),
    ...LOCAL_IPS.map((value) => ({ type: 'ip' as const, value })),
  ]
  const leaf = await x509.X509CertificateGenerator.create({
    subject: 'CN=sp-connect simulator',
    issuer: ca.cert.subject,
    notBefore: new Date(now - DAY_MS),
    notAfter: new Date(now + LEAF_LIFETIME_MS),
    publicKey: leafKeys.publicKey,
    signingKey: ca.key,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
      await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey),
    ],
  })
  const leafKeyDer = await crypto.subtle.exportKey('pkcs8', leafKeys.privateKey)
  return {
    caCertPath,
    caCertPem: ca.certPem,
    certChainPem: `${leaf.toString('pem')}\n${ca.certPem.trim()}\n`,
    keyPem: pemPrivateKey(leafKeyDer),
    createdCa,
  }
}
