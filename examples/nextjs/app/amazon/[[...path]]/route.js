// Every request under /amazon goes to sp-connect's Web fetch handler, as it came: route handlers get the
// unread Web Request, so no body parser is in the way.
import { sp } from '../../../lib/sp.js'

export const dynamic = 'force-dynamic'

async function handler(request) {
  return (await sp()).fetch(request)
}

export { handler as DELETE, handler as GET, handler as PATCH, handler as POST, handler as PUT }
