/**
 * The `User-Agent` SP-API requires on every request (spapi-facts.md §6.1):
 * `AppName/Version (Language=…; Name=Value; …)`. Amazon's quoting rules: a backslash is doubled anywhere; a slash
 * is quoted in the application name, an opening parenthesis in the version, an equals sign in attribute names,
 * and a closing parenthesis or semicolon in attribute values. Amazon rejects values over 500 characters.
 */

/** Longest User-Agent SP-API accepts. */
const MAX_USER_AGENT_LENGTH = 500

interface UserAgentParts {
  readonly appName: string
  readonly appVersion: string
  /** Required by Amazon; first attribute. */
  readonly language: string
  /** More `Name=Value` attributes in order (e.g. Platform); dropped from the end when the header would be too long. */
  readonly attributes?: readonly (readonly [string, string])[]
}

/** Control characters (and DEL) could split or corrupt the header: replaced by spaces. */
function clean(value: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
  return value.replace(/[\u0000-\u001f\u007f]/g, ' ').trim()
}

function quote(value: string, special: RegExp): string {
  return clean(value)
    .replace(/\\/g, '\\\\')
    .replace(special, (ch) => `\\${ch}`)
}

/** A conforming User-Agent from its parts, at most {@link MAX_USER_AGENT_LENGTH} characters. */
function formatUserAgent(parts: UserAgentParts): string {
  const head = `${quote(parts.appName, /\//g) || 'app'}/${quote(parts.appVersion, /\(/g) || '0'}`
  const attributes = [['Language', parts.language] as const, ...(parts.attributes ?? [])].map(
    ([name, value]) => `${quote(name, /=/g)}=${quote(value, /[);]/g)}`,
  )
  // Optional attributes go first when it is too long; then the name is cut (Language must stay).
  while (attributes.length > 1 && `${head} (${attributes.join('; ')})`.length > MAX_USER_AGENT_LENGTH)
    attributes.pop()
  const tail = ` (${attributes.join('; ')})`
  const room = MAX_USER_AGENT_LENGTH - tail.length
  // A cut must not leave a lone quoting backslash at the end of the head.
  const cut =
    head.length > room
      ? head.slice(0, room).replace(/\\+$/, (s) => s.slice(0, s.length - (s.length % 2)))
      : head
  return `${cut}${tail}`.slice(0, MAX_USER_AGENT_LENGTH)
}

/** sp-connect's own User-Agent: `sp-connect/<version> (Language=TypeScript; Platform=Node.js/<v>; OS=<os>)`. */
export function defaultUserAgent(version: string, appName = 'sp-connect'): string {
  return formatUserAgent({
    appName,
    appVersion: version,
    language: 'TypeScript',
    attributes: [
      ['Platform', `Node.js/${process.versions.node}`],
      ['OS', process.platform],
    ],
  })
}
