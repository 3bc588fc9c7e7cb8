/**
 * What every simulator route needs: the apps, the state, the signing key, the clock, randomness and the
 * notification sender.
 */
import type { Notifier } from './notifications.ts'
import type { AppRegistry } from './registry.ts'
import type { SimulatorState } from './state.ts'

export interface SimulatorContext {
  readonly registry: AppRegistry
  readonly state: SimulatorState
  /** HMAC key for tokens and CSRF values. Never logged, never rendered. */
  readonly signingSecret: string
  /** Simulator clock: the injected clock plus the control API's offset. */
  readonly now: () => number
  readonly random: () => number
  /** Delivers SP-API notifications (the app's SQS queue). */
  readonly notifier: Notifier
}
