// dependency-cruiser: the architecture half of `npm run lint` (`depcruise src --config .dependency-cruiser.cjs`).
// The layers (bottom to top, LAYERS below): a module may import only from its own layer or a layer
// below, never from a higher one, and there are no cycles. Type-only imports
// count (tsPreCompilationDeps), so a layer cannot even name a higher layer's types.

/** Bottom to top: [layer name, folders under src/ (or a src/ file, ending in .ts)]. */
const LAYERS = [
  ['lib', ['lib']],
  ['host', ['host']],
  ['inventory', ['inventory']],
  ['engine', ['plan', 'ssh', 'tls']],
  ['domain', ['app', 'roles', 'templates', 'edge', 'checks', 'status', 'logs', 'monitoring', 'lab', 'ui']],
  ['tasks', ['tasks', 'init']],
  ['commands', ['commands', 'help.ts']],
]

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
/** `^src/(a|b)/` for folders, `^src/help\.ts$` for files. */
const pathOf = (entries) => {
  const dirs = entries.filter((e) => !e.endsWith('.ts')).map(esc)
  const files = entries.filter((e) => e.endsWith('.ts')).map(esc)
  const parts = []
  if (dirs.length > 0) parts.push(`^src/(${dirs.join('|')})/`)
  if (files.length > 0) parts.push(`^src/(${files.join('|')})$`)
  return parts.join('|')
}

/** One rule per layer below the top: it may not import anything of the layers above it. */
const layerRules = LAYERS.slice(0, -1).map(([name, folders], i) => {
  const above = LAYERS.slice(i + 1)
  return {
    name: `layer-${i}-${name}`,
    severity: 'error',
    comment: `${name} (layer ${i}: ${folders.join(', ')}) may not import a higher layer (${above.map(([n]) => n).join(', ')}).`,
    from: {path: pathOf(folders)},
    to: {path: pathOf(above.flatMap(([, f]) => f))},
  }
})

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles (type-only imports included).',
      from: {},
      to: {circular: true},
    },
    ...layerRules,
    {
      name: 'not-in-layout',
      severity: 'error',
      comment: 'Every module under src/ belongs to a folder of a layer (see LAYERS); place this one.',
      from: {path: '^src/', pathNot: pathOf(LAYERS.flatMap(([, f]) => f))},
      to: {},
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to nothing (a typo, a moved file, a package not installed).',
      from: {},
      to: {couldNotResolve: true},
    },
    {
      name: 'no-non-package-json',
      severity: 'error',
      comment: 'A package that src/ uses must be listed in package.json (not only present in node_modules).',
      from: {},
      to: {dependencyTypes: ['npm-no-pkg', 'npm-unknown']},
    },
    {
      name: 'not-to-dev-dep',
      severity: 'error',
      comment: 'src/ is shipped: at run time it may not need a devDependency (type-only imports are fine).',
      from: {path: '^src/'},
      to: {dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'], pathNot: ['node_modules/@types/']},
    },
    {
      name: 'not-to-test',
      severity: 'error',
      comment: 'Product code may not import test code.',
      from: {path: '^src/'},
      to: {path: '^test/'},
    },
    {
      name: 'no-deprecated-core',
      severity: 'warn',
      comment: 'A deprecated Node core module.',
      from: {},
      to: {dependencyTypes: ['core'], path: '^(punycode|domain|constants|sys|_linklist|_stream_wrap)$'},
    },
    {
      name: 'no-orphans',
      severity: 'warn',
      comment: 'A module nothing imports (oclif loads commands and help.ts by path, so they are exempt).',
      from: {orphan: true, pathNot: ['^src/commands/', '^src/help\\.ts$', '\\.d\\.ts$']},
      to: {},
    },
  ],
  options: {
    doNotFollow: {path: 'node_modules'},
    tsPreCompilationDeps: true,
    tsConfig: {fileName: 'tsconfig.json'},
    moduleSystems: ['es6', 'cjs'],
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.js', '.json'],
    },
    reporterOptions: {text: {highlightFocused: true}},
  },
}
