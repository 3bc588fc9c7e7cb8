/**
 * LWA token-endpoint errors as Amazon answers them (spapi-facts.md §4.4): status, `error` code and the
 * observed `error_description` texts. The body also carries `error_index` and `request_id`.
 */

export const LWA_ERRORS = {
  invalid_client: { status: 401, description: 'Client authentication failed' },
  invalid_grant_code: { status: 400, description: 'The request has an invalid grant parameter : code' },
  // Not observed: Amazon's answer to a redirect_uri that differs from the consent's. RFC 6749 §5.2 says
  // invalid_grant; the text follows LWA's "invalid grant parameter" pattern.
  invalid_grant_redirect_uri: {
    status: 400,
    description: 'The request has an invalid grant parameter : redirect_uri',
  },
  invalid_grant_refresh_token: {
    status: 400,
    description:
      "The request has an invalid grant parameter : refresh_token. User may have revoked or didn't grant the permission.",
  },
  invalid_scope: { status: 400, description: 'The request has an invalid parameter : scope' },
  unsupported_grant_type: {
    status: 400,
    description: 'The authorization grant type is not supported by the authorization server',
  },
  // Fault injection. LWA's texts for these are not documented; the simulator chose them.
  server_error: { status: 500, description: 'Internal server error' },
  temporarily_unavailable: { status: 503, description: 'Service temporarily unavailable' },
  throttled: { status: 429, description: 'Rate exceeded' },
} as const

export type LwaErrorKey = keyof typeof LWA_ERRORS

/** The OAuth `error` value each entry answers with. */
export const LWA_ERROR_CODE: Readonly<Record<LwaErrorKey, string>> = {
  invalid_client: 'invalid_client',
  invalid_grant_code: 'invalid_grant',
  invalid_grant_redirect_uri: 'invalid_grant',
  invalid_grant_refresh_token: 'invalid_grant',
  invalid_scope: 'invalid_scope',
  unsupported_grant_type: 'unsupported_grant_type',
  server_error: 'server_error',
  temporarily_unavailable: 'temporarily_unavailable',
  // 429 is not documented for LWA at all; temporarily_unavailable is what the SDKs treat as retriable.
  throttled: 'temporarily_unavailable',
}

/** `invalid_request` names the offending parameter: "The request has an invalid parameter : <name>". */
export function invalidRequestDescription(parameter: string): string {
  return `The request has an invalid parameter : ${parameter}`
}
