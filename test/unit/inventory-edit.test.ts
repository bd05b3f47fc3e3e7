import {describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import {addSite, type NewSite, removeSite} from '../../src/inventory/edit.js'
import {validateInventoryText} from '../../src/inventory/validate.js'
import {ConfigError} from '../../src/lib/errors.js'

/** A valid inventory without sites, with a schema line, a header, comments above keys and inline. */
const BASE = `# yaml-language-server: $schema=./schema/infra.schema.json
# The fleet of example.com.

domain: example.com # the apex
aliases: [www.example.com]
# Where we come in.
bastion:
  publicAddress: 203.0.113.10 # public
  privateAddress: 10.10.0.1
web:
  nodes:
    # the first node
    - name: web1
      address: 10.10.0.11
    - name: web2
      address: 10.10.0.12
      standby: true
`

/** BASE with two sites, blank-line separated, comments inside and around them, and keys after them. */
const SITES = `${BASE}
# The sites of the fleet.
sites:
  # The blog.
  blog:
    domain: blog.example.com # its own domain
    # Ghost listens on 2368.
    app:
      image: blog
      port: 2368 # ghost

  # The shop.
  shop:
    domain: shop.example.com
    aliases: [www.shop.example.com]
    # the shop's app
    app: {image: ghcr.io/acme/shop}
    # port: 3000
  # more sites here

# Keep five releases.
registry:
  keep: 5
# The end.
`

const NEWS: NewSite = {domain: 'news.example.com', image: 'news'}

/** The lines of `text` that hold a comment. */
const commentLines = (text: string) => text.split('\n').filter((l) => l.includes('#'))

/** `text` must be a valid inventory; returns it. */
function valid(text: string) {
  const r = validateInventoryText(text)
  expect(r.errors).toEqual([])
  return r.inventory!
}

function configError(f: () => unknown): ConfigError {
  try {
    f()
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).exitCode).toBe(2)
    return error as ConfigError
  }
  throw new Error('no error thrown')
}

describe('addSite', () => {
  it('creates a block `sites:` at the end of a file without one, and the result passes the schema', () => {
    valid(BASE)
    const out = addSite(BASE, 'news', NEWS)
    expect(out).toBe(`${BASE}sites:\n  news:\n    domain: news.example.com\n    app:\n      image: news\n`)
    const inv = valid(out)
    expect(inv.sites.news).toMatchObject({domain: 'news.example.com', aliases: [], app: {image: 'news', port: 8080}})
    expect(inv.sites.news.nodes).toBeUndefined()
    expect(removeSite(out, 'news')).toBe(BASE)
  })

  it('writes aliases only when there are some, and the port only when given', () => {
    const out = addSite(BASE, 'news', {...NEWS, aliases: ['www.news.example.com'], port: 3000})
    expect(parse(out).sites).toEqual({news: {domain: 'news.example.com', aliases: ['www.news.example.com'], app: {image: 'news', port: 3000}}})
    expect(valid(out).sites.news.app.port).toBe(3000)
    expect(parse(addSite(BASE, 'news', {...NEWS, aliases: []})).sites.news).toEqual({domain: 'news.example.com', app: {image: 'news'}})
  })

  it('adds after the last site, before the comments that end `sites`, with the same blank-line gap', () => {
    const out = addSite(SITES, 'news', NEWS)
    expect(out).toContain(
      '    # port: 3000\n\n  news:\n    domain: news.example.com\n    app:\n      image: news\n  # more sites here\n\n# Keep five releases.\n',
    )
    expect(Object.keys(parse(out).sites)).toEqual(['blog', 'shop', 'news'])
    const inv = valid(out)
    expect(Object.keys(inv.sites)).toEqual(['blog', 'shop', 'news'])
  })

  it('keeps every line of the original, comments included, in order', () => {
    const out = addSite(SITES, 'news', {...NEWS, aliases: ['www.news.example.com'], port: 8081})
    expect(out.startsWith('# yaml-language-server: $schema=./schema/infra.schema.json\n')).toBe(true)
    for (const line of commentLines(SITES)) expect(out.split('\n')).toContain(line)
    const added = '  news:\n    domain: news.example.com\n    aliases:\n      - www.news.example.com\n    app:\n      image: news\n      port: 8081\n'
    expect(out).toBe(SITES.replace('    # port: 3000\n', `    # port: 3000\n\n${added}`))
  })

  it('fills an empty `sites:` or `sites: {}`, keeping the comment on its line', () => {
    for (const empty of ['sites:', 'sites: {}', 'sites: {} # none yet', 'sites: ~']) {
      const text = BASE.replace('web:\n', `${empty}\nweb:\n`)
      const out = addSite(text, 'news', NEWS)
      const comment = empty.includes('#') ? ' # none yet' : ''
      expect(out, empty).toBe(BASE.replace('web:\n', `sites:${comment}\n  news:\n    domain: news.example.com\n    app:\n      image: news\nweb:\n`))
      valid(out)
    }
  })

  it('follows the file: four-space indentation, CRLF line ends, no final line break', () => {
    const four = 'domain: example.com\nweb:\n    nodes:\n        - name: web1\n'
    expect(addSite(four, 'news', {...NEWS, aliases: ['a.example.com']})).toBe(
      `${four}sites:\n    news:\n        domain: news.example.com\n        aliases:\n            - a.example.com\n        app:\n            image: news\n`,
    )
    const indentless = 'domain: example.com\nweb:\n  nodes:\n  - name: web1 # first\n'
    expect(addSite(indentless, 'news', {...NEWS, aliases: ['a.example.com']})).toBe(
      `${indentless}sites:\n  news:\n    domain: news.example.com\n    aliases:\n    - a.example.com\n    app:\n      image: news\n`,
    )
    const crlf = SITES.replaceAll('\n', '\r\n')
    const out = addSite(crlf, 'news', NEWS)
    expect(out.replaceAll('\r\n', '')).not.toContain('\n')
    expect(out.replaceAll('\r\n', '\n')).toBe(addSite(SITES, 'news', NEWS))
    expect(removeSite(out, 'news')).toBe(crlf)
    const bare = SITES.trimEnd()
    expect(addSite(bare, 'news', NEWS).endsWith('      image: news\n  # more sites here\n\n# Keep five releases.\nregistry:\n  keep: 5\n# The end.')).toBe(true)
    expect(removeSite(addSite(bare, 'news', NEWS), 'news')).toBe(bare)
  })

  it('writes an empty file as a `sites:` mapping', () => {
    expect(addSite('', 'news', NEWS)).toBe('sites:\n  news:\n    domain: news.example.com\n    app:\n      image: news\n')
    expect(addSite('# header\n', 'news', NEWS)).toBe('# header\nsites:\n  news:\n    domain: news.example.com\n    app:\n      image: news\n')
  })

  it('edits a flow-style `sites: {…}` through the document, keeping its comments', () => {
    const text = `${BASE}# the sites\nsites: {blog: {domain: blog.example.com, app: {image: blog}}} # flow\n`
    const out = addSite(text, 'news', NEWS)
    expect(parse(out).sites).toEqual({blog: {domain: 'blog.example.com', app: {image: 'blog'}}, news: {domain: 'news.example.com', app: {image: 'news'}}})
    for (const line of commentLines(BASE)) expect(out.split('\n')).toContain(line)
    expect(out).toContain('# the sites\n')
    expect(out).toContain('# flow')
    valid(out)
    expect(removeSite(out, 'news')).toBe(text)
  })

  it('refuses a site that exists, a `sites` that is not a mapping, and a file that is not an inventory', () => {
    const exists = configError(() => addSite(SITES, 'shop', NEWS))
    expect(exists.message).toBe('sites.shop already exists')
    expect(exists.hint).toContain('infra site rm shop')
    for (const bad of ['sites: [shop]', 'sites: shop', 'sites: 3']) {
      const e = configError(() => addSite(`${BASE}${bad}\n`, 'news', NEWS))
      expect(e.message, bad).toMatch(/^sites is not a mapping \(it is .+\)$/)
    }
    expect(configError(() => addSite('domain: [x\n', 'news', NEWS)).message).toMatch(/^the inventory is not valid YAML: /)
    expect(configError(() => addSite('domain: a\ndomain: b\n', 'news', NEWS)).message).toMatch(/unique/)
    expect(configError(() => addSite('- a\n- b\n', 'news', NEWS)).message).toBe('the inventory is not a mapping of keys')
  })
})

describe('removeSite', () => {
  it('gives back the original after addSite, byte for byte', () => {
    const layouts = {
      SITES,
      compact: SITES.replace('port: 2368 # ghost\n\n', 'port: 2368 # ghost\n'),
      'sites last': SITES.slice(0, SITES.indexOf('\n# Keep five')) + '\n',
      'one site': `${BASE}sites:\n  blog:\n    domain: blog.example.com\n    app:\n      image: blog\n# after\n`,
      'first key': 'sites:\n  blog:\n    domain: blog.example.com\n    app: {image: blog}\ndomain: example.com\n',
    }
    for (const [what, text] of Object.entries(layouts)) {
      for (const site of [NEWS, {...NEWS, aliases: ['a.example.com', 'b.example.com'], port: 9000}]) {
        const out = addSite(text, 'news', site)
        expect(out, what).not.toBe(text)
        expect(removeSite(out, 'news'), what).toBe(text)
      }
    }
  })

  it('removes a site with its comments and one blank-line gap, keeping every other comment', () => {
    const out = removeSite(SITES, 'shop')
    const removed = SITES.split('\n').filter((l) => !out.split('\n').includes(l))
    expect(removed).toEqual([
      '  # The shop.',
      '  shop:',
      '    domain: shop.example.com',
      '    aliases: [www.shop.example.com]',
      "    # the shop's app",
      '    app: {image: ghcr.io/acme/shop}',
      '    # port: 3000',
    ])
    expect(out).toContain('      port: 2368 # ghost\n  # more sites here\n\n# Keep five releases.\n')
    for (const line of commentLines(SITES).filter((l) => !removed.includes(l))) expect(out.split('\n')).toContain(line)
    expect(Object.keys(valid(out).sites)).toEqual(['blog'])
  })

  it('removes the first site and the gap after it', () => {
    const out = removeSite(SITES, 'blog')
    expect(out).toContain('\nsites:\n  # The shop.\n  shop:\n')
    expect(out).not.toContain('blog')
    for (const line of commentLines(SITES).filter((l) => !/blog|Ghost|ghost/.test(l))) expect(out.split('\n')).toContain(line)
    expect(Object.keys(valid(out).sites)).toEqual(['shop'])
  })

  it('removes the `sites` key with its last site', () => {
    const out = removeSite(removeSite(SITES, 'blog'), 'shop')
    expect(out).toBe(`${BASE}\n# Keep five releases.\nregistry:\n  keep: 5\n# The end.\n`)
    expect(valid(out).sites).toEqual({})
    expect('sites' in parse(out)).toBe(false)
    expect(removeSite(addSite(BASE, 'news', NEWS), 'news')).toBe(BASE)
  })

  it('never removes the file header above a first key', () => {
    const text = '# yaml-language-server: $schema=x.json\n# header\nsites:\n  blog:\n    domain: b.example.com\ndomain: example.com\n'
    expect(removeSite(text, 'blog')).toBe('# yaml-language-server: $schema=x.json\n# header\ndomain: example.com\n')
  })

  it('removes from a flow-style `sites: {…}`', () => {
    const text = `${BASE}sites: {blog: {domain: b.example.com, app: {image: b}}, shop: {domain: s.example.com, app: {image: s}}} # flow\n`
    const out = removeSite(text, 'blog')
    expect(parse(out).sites).toEqual({shop: {domain: 's.example.com', app: {image: 's'}}})
    for (const line of commentLines(BASE)) expect(out.split('\n')).toContain(line)
    expect(parse(removeSite(out, 'shop')).sites).toBeUndefined()
  })

  it('refuses a site that does not exist, suggesting a near name', () => {
    const e = configError(() => removeSite(SITES, 'shp'))
    expect(e.message).toBe('sites.shp does not exist')
    expect(e.hint).toBe('did you mean shop? `infra sites` lists the sites')
    expect(configError(() => removeSite(SITES, 'news')).hint).toBe('`infra sites` lists the sites')
    expect(configError(() => removeSite(BASE, 'news')).message).toBe('sites.news does not exist')
    expect(configError(() => removeSite(`${BASE}sites:\n`, 'news')).message).toBe('sites.news does not exist')
    expect(configError(() => removeSite('', 'news')).message).toBe('sites.news does not exist')
    expect(configError(() => removeSite('a: [\n', 'news')).message).toMatch(/^the inventory is not valid YAML/)
  })
})
