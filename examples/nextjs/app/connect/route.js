import { sp } from '../../lib/sp.js'

export const dynamic = 'force-dynamic'

export async function GET() {
  // In a real app the tenant is the signed-in user's organisation.
  const link = await (await sp()).connectSessions.create({ tenantId: 'acme', region: 'na' })
  return Response.redirect(link.url, 303)
}
