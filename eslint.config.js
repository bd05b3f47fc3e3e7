// ESLint flat config: the static-analysis half of `npm run lint` (the other half is
// dependency-cruiser, .dependency-cruiser.cjs). Every rule is an error: the gate is green or red.
import js from '@eslint/js'
import {defineConfig} from 'eslint/config'
import tseslint from 'typescript-eslint'

// `eslint-comments` discipline without the plugin: an `eslint-disable*` comment names its rules
// and says why after ` -- ` (e.g. `// eslint-disable-next-line @typescript-eslint/no-explicit-any
// -- ssh2 types the callback loosely`). Unused directives are errors through linterOptions below.
const DIRECTIVE = /^\s*eslint-disable(?:-next-line|-line)?(?=\s|$)(.*)$/s
// A blanket `/* eslint-disable */` would hide the report about itself (directives filter every
// message after them), so the rule keeps those findings here and the processor adds them back
// after the directives were applied.
const blanket = new Map()
const local = {
  rules: {
    'disable-needs-reason': {
      meta: {
        type: 'suggestion',
        docs: {description: 'eslint-disable comments must name their rules and give a reason after --'},
        schema: [],
        messages: {noReason: 'Say why after ` -- ` (e.g. `{{kind}} RULE -- reason`).'},
      },
      create(context) {
        return {
          Program() {
            const found = []
            for (const comment of context.sourceCode.getAllComments()) {
              const m = DIRECTIVE.exec(comment.value)
              if (!m) continue
              const kind = comment.value.trim().split(/\s/)[0]
              const [rules, ...reason] = m[1].split(/\s--(?:\s|$)/)
              if (rules.trim() === '') {
                found.push({
                  ruleId: 'local/disable-needs-reason', severity: 2, nodeType: null,
                  message: `Name the rule(s) this \`${kind}\` turns off; a blanket disable is not allowed.`,
                  line: comment.loc.start.line, column: comment.loc.start.column + 1,
                  endLine: comment.loc.end.line, endColumn: comment.loc.end.column + 1,
                })
              } else if (reason.join('').trim() === '') {
                context.report({loc: comment.loc, messageId: 'noReason', data: {kind}})
              }
            }
            if (found.length > 0) blanket.set(context.filename, found)
          },
        }
      },
    },
  },
  processors: {
    directives: {
      meta: {name: 'infra-directives'},
      supportsAutofix: true,
      preprocess: (text) => [text],
      postprocess(messages, filename) {
        const extra = blanket.get(filename) ?? []
        blanket.delete(filename)
        return [...messages.flat(), ...extra].sort((a, b) => a.line - b.line || a.column - b.column)
      },
    },
  },
}

// Plain Node globals for the few JavaScript files (bin/, scripts/*.js, the config files);
// TypeScript files get theirs from @types/node through the type checker.
const nodeGlobals = Object.fromEntries(
  ['process', 'console', 'Buffer', 'URL', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'structuredClone']
    .map((name) => [name, 'readonly']),
)
const commonjsGlobals = {module: 'writable', require: 'readonly', __dirname: 'readonly', __filename: 'readonly', exports: 'writable'}

export default defineConfig(
  {
    name: 'infra/ignores',
    ignores: ['dist/**', 'node_modules/**', 'oclif.manifest.json', 'schema/**', 'tmp/**', '.demo/**', '.infra/**', 'coverage/**'],
  },
  {
    name: 'infra/linter-options',
    linterOptions: {reportUnusedDisableDirectives: 'error', reportUnusedInlineConfigs: 'error'},
  },
  {
    name: 'infra/all',
    files: ['**/*.ts', '**/*.js', '**/*.mjs', '**/*.cjs'],
    plugins: {local},
    processor: 'local/directives',
    extends: [js.configs.recommended],
    rules: {
      'local/disable-needs-reason': 'error',
    },
  },
  {
    name: 'infra/javascript',
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {ecmaVersion: 'latest', sourceType: 'module', globals: nodeGlobals},
  },
  {
    name: 'infra/commonjs',
    files: ['**/*.cjs'],
    languageOptions: {ecmaVersion: 'latest', sourceType: 'commonjs', globals: {...nodeGlobals, ...commonjsGlobals}},
  },
  {
    // Type-aware: tsconfig.test.json covers src/, test/, scripts/*.ts and vitest.config.ts.
    name: 'infra/typescript',
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: {project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname},
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', {
        args: 'after-used',
        argsIgnorePattern: '^_',
        varsIgnorePattern: '^_',
        caughtErrorsIgnorePattern: '^_',
        destructuredArrayIgnorePattern: '^_',
        ignoreRestSiblings: true,
      }],
      // An `any` that must stay says why:
      // `// eslint-disable-next-line @typescript-eslint/no-explicit-any -- reason`.
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    // Tests and scripts read JSON and YAML documents as they come (the shape is what they assert):
    // the no-unsafe-* family, about values typed `any`, is for the product code.
    name: 'infra/tests',
    files: ['test/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // Fakes implement async interfaces without awaiting anything.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Size limits for the product code (tests are exempt). A file or function above them carries
    // `/* eslint-disable max-lines -- <reason> */` (or max-lines-per-function) at its top; a data
    // table is a valid reason.
    name: 'infra/src-size',
    files: ['src/**/*.ts'],
    rules: {
      'max-lines': ['error', {max: 350, skipBlankLines: true, skipComments: true}],
      'max-lines-per-function': ['error', {max: 80, skipBlankLines: true, skipComments: true, IIFEs: true}],
    },
  },
)
