/**
 * Dependency rules of conf-chat, checked by `npm run lint:deps` (and so by `npm test`).
 * The layers of packages/node/src (docs/architecture.md):
 *
 *   leaves (errors.ts, constants.ts, polyfill.ts, utils/)
 *   storage <- network <- delivery <- account <- chat <- chat-node.ts (imported by index.ts only)
 *
 * A lower layer never imports a higher one. Type-only imports count (`import type`
 * circles are circles too): tsPreCompilationDeps is on.
 */
const NODE = '^packages/node/src/'
const LEAVES = `${NODE}(utils/|(errors|constants|polyfill)\\.ts$)`

/** A layer of packages/node/src may import itself, the layers below it and the leaves. */
function layer (name, below) {
  return {
    name: `node-layer-${name}`,
    comment: `packages/node/src/${name}/ may import only ${[...below, 'the leaves'].join(', ')} (one-way layers)`,
    severity: 'error',
    from: { path: `${NODE}${name}/` },
    to: {
      path: NODE,
      pathNot: [`${NODE}(${[name, ...below].join('|')})/`, LEAVES]
    }
  }
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import circles in the packages\' sources, type-only imports included.',
      severity: 'error',
      from: { path: '^packages/[^/]+/src/' },
      to: { circular: true }
    },
    {
      name: 'node-leaves',
      comment: 'The leaves of packages/node/src (errors.ts, constants.ts, polyfill.ts, utils/) import no layer, only other leaves.',
      severity: 'error',
      from: { path: LEAVES },
      to: { path: NODE, pathNot: LEAVES }
    },
    layer('storage', []),
    layer('network', ['storage']),
    layer('delivery', ['network', 'storage']),
    layer('account', ['delivery', 'network', 'storage']),
    layer('chat', ['account', 'delivery', 'network', 'storage']),
    {
      name: 'node-chat-node-only-from-index',
      comment: 'chat-node.ts wires everything; only packages/node/src/index.ts imports it.',
      severity: 'error',
      from: { pathNot: `${NODE}index\\.ts$` },
      to: { path: `${NODE}chat-node\\.ts$` }
    },
    {
      name: 'node-folder-through-index',
      comment: 'Code in another folder of packages/node/src imports a layer folder through its index.ts (its contract).',
      severity: 'error',
      from: { path: `${NODE}([^/]+)/` },
      to: {
        path: `${NODE}(storage|network|delivery|account|chat)/`,
        pathNot: [`${NODE}$1/`, `${NODE}(storage|network|delivery|account|chat)/index\\.ts$`]
      }
    },
    {
      name: 'protocol-is-independent',
      comment: 'packages/protocol (the wire format) imports no other workspace package.',
      severity: 'error',
      from: { path: '^packages/protocol/' },
      to: { path: ['^packages/(?!protocol/)', '^node_modules/@conf-chat/(?!protocol/)'] }
    },
    {
      name: 'no-relative-import-across-packages',
      comment: 'A package imports another one by its name (@conf-chat/x), never by a relative path into it.',
      severity: 'error',
      from: { path: '^packages/([^/]+)/' },
      to: { path: '^packages/', pathNot: '^packages/$1/', dependencyTypes: ['local'] }
    },
    {
      name: 'programs-use-node-entry-points',
      comment: 'packages/cli and packages/supernode use @conf-chat/node only through its entry points: ' +
        '\'@conf-chat/node\' (src/index.ts) and \'@conf-chat/node/network\' (src/network/index.ts).',
      severity: 'error',
      from: { path: '^packages/(cli|supernode)/' },
      to: {
        path: ['^packages/node/', '^node_modules/@conf-chat/node/'],
        pathNot: '^packages/node/src/(index|network/index)\\.ts$'
      }
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that does not resolve (a typo, or a path the package\'s "exports" does not offer).',
      severity: 'error',
      from: { path: '^packages/' },
      to: { couldNotResolve: true }
    }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^packages/[^/]+/dist/' },
    // type-only imports are dependencies too
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.base.json' },
    // workspace packages resolve to their TypeScript sources, as in vitest
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['conf-chat:source', 'import', 'types', 'node', 'default'],
      mainFields: ['module', 'main', 'types', 'typings']
    },
    reporterOptions: {
      text: { highlightFocused: true }
    }
  }
}
