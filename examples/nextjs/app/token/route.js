import { sp } from '../../lib/sp.js'
import { tokenStatus } from '../../lib/sp-connect.js'

export const dynamic = 'force-dynamic'

export async function GET() {
  return Response.json(await tokenStatus(await sp(), 'acme'))
}
