import {createHash} from 'node:crypto'
import {describe, expect, it} from 'vitest'

import {branchSlug, isBranchName, SLUG_MAX} from '../../src/app/slug.js'

const hash6 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex').slice(0, 6)
/** What every slug must look like: a DNS label's characters, no "--" (the unit key's separator), at most 40. */
const SLUG = /^[a-z]([a-z0-9-]*[a-z0-9])?$/

function wellFormed(slug: string): void {
  expect(slug).toMatch(SLUG)
  expect(slug).not.toContain('--')
  expect(slug.length).toBeLessThanOrEqual(SLUG_MAX)
}

const LONG = `feature/${'very-long-branch-name-'.repeat(5)}end`.slice(0, 100)

describe('branchSlug', () => {
  it.each([
    ['feature/Login-Page', 'feature-login-page'],
    ['FIX__bug#12', 'fix-bug-12'],
    ['release/1.2.3', 'release-1-2-3'],
    ['123-hotfix', 'b-123-hotfix'],
    ['2024', 'b-2024'],
    ['---', 'branch'],
    ['', 'branch'],
    ['///...', 'branch'],
    ['café/été', 'caf-t'],
    ['main', 'main'],
    ['Main', 'main'],
    ['dependabot/npm_and_yarn/vite-5.4.1', 'dependabot-npm-and-yarn-vite-5-4-1'],
    ['-leading/and/trailing-', 'leading-and-trailing'],
    ['a--b__c  d', 'a-b-c-d'],
    ['JIRA-42_Fix', 'jira-42-fix'],
    ['x', 'x'],
    ['9', 'b-9'],
    ['feature/日本語', 'feature'],
    ['a'.repeat(40), 'a'.repeat(40)],
    ['a'.repeat(41), `${'a'.repeat(33)}-${hash6('a'.repeat(41))}`],
    // Cut right after a "-": the "-" goes, so no "--" before the hash.
    [`${'a'.repeat(32)}-${'b'.repeat(10)}`, `${'a'.repeat(32)}-${hash6(`${'a'.repeat(32)}-${'b'.repeat(10)}`)}`],
    [`1${'a'.repeat(39)}`, `b-1${'a'.repeat(30)}-${hash6(`1${'a'.repeat(39)}`)}`],
  ])('%j → %j', (branch, slug) => {
    expect(branchSlug(branch)).toBe(slug)
    wellFormed(slug)
  })

  it('shortens a long branch to at most 40 characters ending with 6 hex characters of its sha256', () => {
    expect(LONG).toHaveLength(100)
    const slug = branchSlug(LONG)
    expect(slug.length).toBeLessThanOrEqual(SLUG_MAX)
    expect(slug).toMatch(/-[0-9a-f]{6}$/)
    expect(slug.endsWith(`-${hash6(LONG)}`)).toBe(true)
    expect(slug.startsWith('feature-very-long-branch-name')).toBe(true)
    wellFormed(slug)
  })

  it('gives two long branches with the same first 40 characters different slugs', () => {
    const a = `${'x'.repeat(40)}/one`
    const b = `${'x'.repeat(40)}/two`
    expect(branchSlug(a)).not.toBe(branchSlug(b))
    wellFormed(branchSlug(a))
    wellFormed(branchSlug(b))
  })

  it('is deterministic: the same branch (and the same taken slugs) always gives the same slug', () => {
    for (const branch of ['feature/Login-Page', LONG, 'café/été', '123']) {
      expect(branchSlug(branch)).toBe(branchSlug(branch))
      const taken = new Map([['feature-login-page', 'Feature/Login-Page']])
      expect(branchSlug(branch, taken)).toBe(branchSlug(branch, new Map(taken)))
    }
  })

  it('makes a slug another branch uses unique with the hash, and gives a branch back its own slug', () => {
    const taken = new Map([['feature-login-page', 'Feature/Login-Page']])
    const slug = branchSlug('feature/login-page', taken)
    expect(slug).toBe(`feature-login-page-${hash6('feature/login-page')}`)
    wellFormed(slug)
    // The branch that has the slug keeps it.
    expect(branchSlug('Feature/Login-Page', taken)).toBe('feature-login-page')
    // A branch that already has a slug gets that one, even when its plain slug is free again.
    expect(branchSlug('feature/login-page', new Map([[slug, 'feature/login-page']]))).toBe(slug)
    // Free slugs are unaffected by the others.
    expect(branchSlug('main', taken)).toBe('main')
  })

  it('takes more hash characters when the hashed slug is taken too', () => {
    const branch = 'fix/a'
    const six = `fix-a-${hash6(branch)}`
    const taken = new Map([
      ['fix-a', 'FIX/A'],
      [six, 'someone/else'],
    ])
    const slug = branchSlug(branch, taken)
    expect(slug).not.toBe(six)
    expect(slug).toBe(`fix-a-${createHash('sha256').update(branch).digest('hex').slice(0, 7)}`)
    wellFormed(slug)
  })

  it('never yields a malformed slug or "--", whatever the branch', () => {
    const branches = ['--a--', 'a-/-b', '1-', '-1', 'ÀÉÎ', '9'.repeat(80), `${'a-'.repeat(30)}b`, `x${'-'.repeat(50)}y`, `${'ab-'.repeat(12)}-c${'d'.repeat(30)}`]
    for (let n = 30; n <= 45; n++) branches.push(`${'a'.repeat(n - 1)}-${'b'.repeat(10)}`, `${'1'.repeat(n)}`)
    for (const branch of branches) {
      wellFormed(branchSlug(branch))
      wellFormed(branchSlug(branch, new Map([[branchSlug(branch), 'other']])))
    }
  })
})

describe('isBranchName', () => {
  it.each([
    ['main', undefined],
    ['feature/Login-Page', undefined],
    ['release/1.2.3', undefined],
    ['café/été', undefined],
    ['a'.repeat(255), undefined],
    ['', 'is empty'],
    ['a'.repeat(256), 'is longer than 255 characters'],
    ['my branch', 'has a space or a control character'],
    ['tab\there', 'has a space or a control character'],
    ['nul\u0000', 'has a space or a control character'],
    ['del\u007f', 'has a space or a control character'],
    ['a~1', 'has "~", which git does not allow in a branch name'],
    ['a^', 'has "^", which git does not allow in a branch name'],
    ['a:b', 'has ":", which git does not allow in a branch name'],
    ['what?', 'has "?", which git does not allow in a branch name'],
    ['wild*', 'has "*", which git does not allow in a branch name'],
    ['a[1]', 'has "[", which git does not allow in a branch name'],
    ['back\\slash', 'has "\\\\", which git does not allow in a branch name'],
    ['a..b', 'has "..", which git does not allow in a branch name'],
    ['a@{1}', 'has "@{", which git does not allow in a branch name'],
    ['@', 'is "@", which git does not allow as a branch name'],
    ['-x', 'starts with "-"'],
    ['a//b', 'has an empty path component (a leading, trailing or double "/")'],
    ['a/', 'has an empty path component (a leading, trailing or double "/")'],
    ['a/.hidden', 'has a component starting with "." or ending with ".lock"'],
    ['x.lock', 'has a component starting with "." or ending with ".lock"'],
    ['x.', 'ends with "."'],
  ])('%j: %s', (branch, reason) => {
    expect(isBranchName(branch)).toBe(reason)
  })
})
