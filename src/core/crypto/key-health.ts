/**
 * Whether the keyring can open what is stored: the key ids stored ciphertexts name that the keyring lacks.
 * `serve` warns about them at start, and `/readyz` reports them. Reads key ids only; decrypts nothing.
 */
import type { KeyRotationStore } from '../../store/store.ts'
import type { Keyring } from './keyring.ts'

/**
 * Key ids used by stored rows (connections' tokens, app secrets) that are not in `keyring`, sorted; empty when
 * every stored row is under a configured key. Those rows fail with `key_unavailable` until the key is put back
 * (docs/key-rotation.md, "What key unavailable means").
 */
export async function storedKeyIdsMissingFrom(
  store: Pick<KeyRotationStore, 'listCiphertextKeyIds'>,
  keyring: Pick<Keyring, 'has'>,
): Promise<string[]> {
  return (await store.listCiphertextKeyIds()).filter((id) => !keyring.has(id))
}
