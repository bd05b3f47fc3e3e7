/**
 * What the sites commands check on this machine before they touch a host (docs/SITES.md): an
 * unknown site or environment, a promotion to itself, previews of a site without them, a bad
 * branch, an invalid `site add` (the file is left byte for byte as it was). Each is exit 2 with the
 * fix, and no connection is opened (the inventory's hosts are documentation addresses).
 */
import {chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, describe, expect, it} from 'vitest'

import Deploy from '../../src/commands/deploy.js'
import PreviewDeploy from '../../src/commands/preview/deploy.js'
import Promote from '../../src/commands/promote.js'
import Releases from '../../src/commands/releases.js'
import Rollback from '../../src/commands/rollback.js'
import SiteAdd from '../../src/commands/site/add.js'
import SiteRm from '../../src/commands/site/rm.js'
import {runCommand} from './command-helpers.js'

const dir = mkdtempSync(path.join(tmpdir(), 'infra-sites-cmd-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

const TEXT = `# The fleet (a comment that must survive).
domain: example.com
bastion: {publicAddress: 203.0.113.10, privateAddress: 10.10.0.1}
web:
  nodes: [{name: web1, address: 10.10.0.11}, {name: web2, address: 10.10.0.12}]
sites:
  # The shop.
  shop:
    domain: shop.example.com
    app: {image: shop}
    environments:
      preprod: {}
  blog:
    domain: blog.example.org
    app: {image: blog}
`

function inventory(name: string, text = TEXT): string {
  const file = path.join(dir, name)
  writeFileSync(file, text)
  chmodSync(file, 0o600)
  return file
}

describe('deploy, rollback, releases, promote: the site and environment are checked first', () => {
  const file = inventory('fleet.yaml')

  it('an unknown site: exit 2, the sites listed, a close name suggested', async () => {
    const r = await runCommand(Deploy, ['shpo', '--version', 'v1', '--yes', '-c', file])
    expect(r.code).toBe(2)
    expect(r.err).toContain('there is no site "shpo" (sites: shop, blog)')
    expect(r.err).toContain('Did you mean shop?')
  })

  it('an unknown environment: exit 2, the environments listed', async () => {
    const r = await runCommand(Deploy, ['shop', '--env', 'staging', '--version', 'v1', '--yes', '-c', file])
    expect(r.code).toBe(2)
    expect(r.err).toContain('site shop has no environment "staging" (it has prod, preprod)')
    const rel = await runCommand(Releases, ['blog', '--env', 'preprod', '-c', file])
    expect(rel.code).toBe(2)
    expect(rel.err).toContain('site blog has no environment "preprod" (it has prod)')
  })

  it('no site named and no single app: exit 2, naming the sites', async () => {
    const r = await runCommand(Deploy, ['--version', 'v1', '--yes', '-c', file])
    expect(r.code).toBe(2)
    expect(r.err).toContain('name the site to deploy (sites: shop, blog)')
  })

  it('rollback: a site name is a site, anything else a release of the single app (here: none)', async () => {
    const r = await runCommand(Rollback, ['nosuch', 'v1', '--yes', '-c', file])
    expect(r.code).toBe(2)
    expect(r.err).toContain('there is no site "nosuch"')
  })

  it('promote to itself, or from an unknown environment: exit 2', async () => {
    const same = await runCommand(Promote, ['shop', 'preprod', 'preprod', '--yes', '-c', file])
    expect(same.code).toBe(2)
    expect(same.err).toContain('promote from preprod to itself')
    const unknown = await runCommand(Promote, ['shop', 'dev', 'prod', '--yes', '-c', file])
    expect(unknown.code).toBe(2)
    expect(unknown.err).toContain('site shop has no environment "dev"')
  })
})

describe('previews: checked before any connection', () => {
  const file = inventory('previews.yaml', TEXT.replace('    environments:\n', '    previews: {domain: preview.shop.example.com}\n    environments:\n'))

  it('a site without previews: exit 2 with the key to add', async () => {
    const r = await runCommand(PreviewDeploy, ['blog', '--branch', 'main', '--version', 'v1', '--yes', '-c', file])
    expect(r.code).toBe(2)
    expect(r.err).toContain('site blog has no previews (no sites.blog.previews)')
    expect(r.err).toContain('domain: preview.blog.example.org')
  })

  it.each(['bad branch', 'x..y', '-x', 'a~b'])('a branch name git would refuse (%j): exit 2', async (branch) => {
    const r = await runCommand(PreviewDeploy, ['shop', '--branch', branch, '--version', 'v1', '--yes', '-c', file])
    expect(r.code).toBe(2)
    expect(r.err).toContain(`--branch ${JSON.stringify(branch)}`)
  })

  it('nothing to deploy: exit 2', async () => {
    const r = await runCommand(PreviewDeploy, ['shop', '--branch', 'main', '--yes', '-c', file])
    expect(r.code).toBe(2)
    expect(r.err).toContain('nothing to deploy')
  })
})

describe('site add / site rm: an invalid result touches nothing', () => {
  it('a site whose domain another site has: exit 2 naming the key; infra.yaml unchanged, no .bak', async () => {
    const file = inventory('add.yaml')
    const r = await runCommand(SiteAdd, ['news', '--domain', 'shop.example.com', '--image', 'news', '--yes', '-c', file])
    expect(r.code).toBe(2)
    expect(r.err).toMatch(/sites\.news\.domain: "shop\.example\.com" is already served by sites\.shop\.domain/)
    expect(readFileSync(file, 'utf8')).toBe(TEXT)
    expect(existsSync(`${file}.bak`)).toBe(false)
    expect(existsSync(`${file}.infra-new`)).toBe(false)
  })

  it('a bad site name or an existing one: exit 2, infra.yaml unchanged', async () => {
    const file = inventory('names.yaml')
    const bad = await runCommand(SiteAdd, ['News_Site', '--domain', 'news.example.com', '--image', 'news', '--yes', '-c', file])
    expect(bad.code).toBe(2)
    expect(bad.err).toContain('sites.News_Site')
    const twice = await runCommand(SiteAdd, ['shop', '--domain', 'other.example.com', '--image', 'shop', '--yes', '-c', file])
    expect(twice.code).toBe(2)
    expect(twice.err).toContain('sites.shop already exists')
    expect(readFileSync(file, 'utf8')).toBe(TEXT)
  })

  it('site rm of an unknown site: exit 2, infra.yaml unchanged', async () => {
    const file = inventory('rm.yaml')
    const r = await runCommand(SiteRm, ['news', '--yes', '-c', file])
    expect(r.code).toBe(2)
    expect(r.err).toContain('there is no site "news"')
    expect(readFileSync(file, 'utf8')).toBe(TEXT)
  })

  it('without --yes and without a terminal: exit 2, nothing written', async () => {
    const file = inventory('noyes.yaml')
    const r = await runCommand(SiteAdd, ['news', '--domain', 'news.example.com', '--image', 'news', '-c', file])
    expect(r.code).toBe(2)
    expect(r.err).toContain('--yes is required')
    expect(readFileSync(file, 'utf8')).toBe(TEXT)
  })
})
