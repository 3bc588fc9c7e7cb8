/**
 * Where this service is, as a browser sees it: the public origin (`config.publicUrl`) plus the base path
 * (`config.basePath`, '' at the root). Every link, form action, redirect, cookie path and URL handed out is built
 * here, so mounting sp-connect under a prefix is one setting (docs/decisions/0012-base-path.md).
 */
import type { AppConfig } from '../config.ts'
import type { ReturnToPolicy } from '../core/authorization/return-to.ts'

type Located = { readonly basePath?: string | undefined }

/** A path of this service as a browser requests it: `/console/sign-in` → `/amazon/console/sign-in`. */
export function servicePath(config: Located, path: `/${string}`): string {
  return `${config.basePath ?? ''}${path}`
}

/** An absolute URL of this service: `https://app.example.com/amazon/connect/s/…`. */
export function serviceUrl(config: Pick<AppConfig, 'publicUrl' | 'basePath'>, path: `/${string}`): string {
  return `${config.publicUrl}${servicePath(config, path)}`
}

/** The cookie Path that covers this service and nothing else of the host's. */
export function cookiePath(config: Located): string {
  return config.basePath || '/'
}

/** How `return_to` is checked: paths resolve under the base path; see return-to.ts. */
export function returnToPolicy(config: AppConfig): ReturnToPolicy {
  return {
    publicUrl: config.publicUrl,
    basePath: config.basePath ?? '',
    allowedOrigins: config.returnOrigins,
  }
}

/**
 * The request as the routes see it: the base path taken off, or undefined when the path is not under it
 * (`/amazonX`, `/other`). The URL is already normalised by the WHATWG parser, so `/amazon/../x` arrives as `/x`.
 */
export function withoutBasePath(request: Request, basePath: string): Request | undefined {
  const url = new URL(request.url)
  if (url.pathname !== basePath && !url.pathname.startsWith(`${basePath}/`)) return undefined
  url.pathname = url.pathname.slice(basePath.length) || '/'
  return new Request(url, request)
}
