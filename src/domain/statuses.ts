/** The states a connection is in, shared by the store (a column), core (the rules that move it) and the API. */

export const CONNECTION_STATUSES = ['active', 'needs_reauthorization', 'disconnected'] as const
export type ConnectionStatus = (typeof CONNECTION_STATUSES)[number]
