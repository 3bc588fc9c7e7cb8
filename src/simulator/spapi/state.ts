/** What the simulated SP-API remembers (memory only): usage-plan buckets and overrides, and destinations. */
import { DestinationStore } from './destinations.ts'
import { UsagePlanEnforcer } from './throttle.ts'

export class SpapiState {
  readonly usagePlans = new UsagePlanEnforcer()
  readonly destinations = new DestinationStore()
}
