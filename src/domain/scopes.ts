/**
 * What an API key may do, by kind of operation (core/access/principal.ts says what each scope allows); the
 * store keeps a key's scopes as a column.
 */

/** Every scope a key can hold. */
export const SCOPES = ['read', 'tokens', 'manage'] as const
export type Scope = (typeof SCOPES)[number]

/** Whether `value` names a scope. */
export function isScope(value: unknown): value is Scope {
  return (SCOPES as readonly unknown[]).includes(value)
}
