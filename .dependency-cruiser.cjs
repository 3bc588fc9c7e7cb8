/**
 * The layering of src/, checked by `npm run check:layers` (part of `npm test`). From the top:
 *
 *   cli → entry points (index.ts, node.ts, webhooks.ts) → server, simulator → wiring (runtime.ts, config.ts,
 *   background.ts, logger.ts) → api-schemas → core → store → domain
 *
 * A layer imports only the layers below it; domain imports nothing of ours. The simulator stands in for Amazon:
 * it may share the vocabulary (domain) and core's tables of Amazon facts, never our store, server or wiring.
 * The client (sp-connect/client) runs in other people's processes: at run time it loads nothing of the server,
 * core or store (their types are fine). Type-only imports count like any other import (tsPreCompilationDeps),
 * except where the client rule says. docs/decisions/0013-store-roles-and-layers.md says why.
 */
const WIRING = '^src/(runtime|config|background|logger)[.]ts$'
const ENTRY = '^src/(index|node|webhooks)[.]ts$'

/** A rule that `from` may import nothing of ours but the layers matched by `allowed`. */
function onlyImports(name, comment, from, allowed) {
  return { name, comment, severity: 'error', from: { path: from }, to: { path: '^src/', pathNot: allowed } }
}

module.exports = {
  forbidden: [
    onlyImports('domain-is-a-leaf', 'src/domain is the shared vocabulary: it imports nothing of ours.', '^src/domain/', '^src/domain/'),
    onlyImports(
      'store-below-core',
      'The store implements the storage contract with the domain vocabulary only; core depends on it, not the reverse.',
      '^src/store/',
      '^src/(store|domain)/',
    ),
    onlyImports(
      'core-below-server',
      'core is the library logic: it sees the store contract and the domain, never HTTP, the CLI or the wiring.',
      '^src/core/',
      '^src/(core|store|domain)/',
    ),
    onlyImports(
      'api-schemas-below-server',
      'The /v1 schemas are shared by the server and the client: they may use core, store and domain only.',
      '^src/api-schemas/',
      '^src/(api-schemas|core|store|domain)/',
    ),
    onlyImports(
      'wiring-below-server',
      'runtime/config/background/logger assemble core and the store; the server and the CLI use them, not the reverse.',
      WIRING,
      `${WIRING}|^src/(api-schemas|core|store|domain)/`,
    ),
    onlyImports(
      'simulator-stands-alone',
      'The simulator plays Amazon: it shares the vocabulary and Amazon facts (domain, core), never our store, server or wiring.',
      '^src/simulator/',
      '^src/(simulator|core|domain)/',
    ),
    onlyImports(
      'server-below-cli',
      'The server never reaches up into the CLI or the package entry points, nor into the simulator or the client.',
      '^src/server/',
      `${WIRING}|^src/(server|api-schemas|core|store|domain)/`,
    ),
    {
      name: 'nothing-imports-the-cli',
      comment: 'The CLI is the top layer.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'entry-points-below-cli',
      comment: 'index.ts, node.ts and webhooks.ts are the package surface; they never import the CLI or the client.',
      severity: 'error',
      from: { path: ENTRY },
      to: { path: '^src/(cli|client)/' },
    },
    {
      name: 'client-loads-no-server-code',
      comment:
        'sp-connect/client runs in the caller’s process: at run time it loads nothing of server, core, store, wiring or CLI (types are fine).',
      severity: 'error',
      from: { path: '^src/client/' },
      to: {
        path: `${WIRING}|${ENTRY}|^src/(server|core|store|cli|simulator)/`,
        dependencyTypesNot: ['type-only'],
      },
    },
    {
      name: 'no-circular',
      comment: 'Modules of src/ form no cycle at run time (a cycle of type-only imports is erased by the compiler).',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
}
