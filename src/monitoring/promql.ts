/**
 * The metric names a PromQL expression reads, so tests can check every rule and dashboard query
 * against the metric families the fleet really exports (a scrape of HAProxy, node exporter and the
 * agents). A small lexer, not a full parser: it knows enough of the grammar to tell a metric name
 * from a function, an aggregation, a keyword, a label name (in `{...}`, `by (...)`, `on (...)`, ...),
 * a duration, a string and a Grafana variable (`$__rate_interval`, `${node}`).
 */

type Token = {kind: 'ident' | 'string' | 'number' | 'var' | 'punct'; text: string}

/** Aggregation operators: `sum by (x) (...)` puts `by` between the name and its parenthesis. */
const AGGREGATIONS = new Set([
  'sum', 'min', 'max', 'avg', 'group', 'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk', 'quantile',
])
/** Keywords followed by a parenthesised list of label names. */
const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right'])
/** Other words that are never metric names. */
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'atan2', 'inf', 'nan'])

function lex(expr: string): Token[] {
  const tokens: Token[] = []
  let i = 0
  const at = (re: RegExp): string | undefined => {
    re.lastIndex = i
    const m = re.exec(expr)
    return m ? m[0] : undefined
  }
  while (i < expr.length) {
    const c = expr[i]
    if (/\s/.test(c)) {
      i++
      continue
    }
    if (c === '#') {
      // A comment runs to the end of the line.
      while (i < expr.length && expr[i] !== '\n') i++
      continue
    }
    if (c === '"' || c === "'" || c === '`') {
      let j = i + 1
      while (j < expr.length && expr[j] !== c) j += c !== '`' && expr[j] === '\\' ? 2 : 1
      tokens.push({kind: 'string', text: expr.slice(i + 1, j)})
      i = j + 1
      continue
    }
    const variable = at(/\$\{[^}]*\}|\$[A-Za-z_]\w*|\[\[[^\]]*\]\]/y)
    if (variable) {
      tokens.push({kind: 'var', text: variable})
      i += variable.length
      continue
    }
    // Numbers and durations: 0.5, 1e3, 0x1f, 5m, 1h30m.
    const number = at(/0x[0-9a-fA-F]+|(\d+(ms|[smhdwy]))+|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?/y)
    if (number) {
      tokens.push({kind: 'number', text: number})
      i += number.length
      continue
    }
    const ident = at(/[A-Za-z_:][\w:]*/y)
    if (ident) {
      tokens.push({kind: 'ident', text: ident})
      i += ident.length
      continue
    }
    tokens.push({kind: 'punct', text: c})
    i++
  }
  return tokens
}

/** Index just past the bracket that closes the one at `start` (`(`, `{` or `[`). */
function skipGroup(tokens: Token[], start: number): number {
  const open = tokens[start].text
  const close = {'(': ')', '{': '}', '[': ']'}[open]
  let depth = 0
  for (let j = start; j < tokens.length; j++) {
    const t = tokens[j]
    if (t.kind !== 'punct') continue
    if (t.text === open) depth++
    else if (t.text === close && --depth === 0) return j + 1
  }
  return tokens.length
}

/** `__name__="x"` matchers in the braces from `start` (a `{` token) to `end`. */
function namesInMatchers(tokens: Token[], start: number, end: number): string[] {
  const out: string[] = []
  for (let j = start + 1; j < end - 2; j++) {
    if (tokens[j].kind === 'ident' && tokens[j].text === '__name__' && tokens[j + 1].text === '=' && tokens[j + 2].kind === 'string') {
      out.push(tokens[j + 2].text)
    }
  }
  return out
}

/** The metric names a PromQL expression reads, sorted and without duplicates. */
export function metricNamesOfExpr(expr: string): string[] {
  const tokens = lex(expr)
  const names = new Set<string>()
  let i = 0
  while (i < tokens.length) {
    const t = tokens[i]
    const next = tokens[i + 1]
    if (t.kind === 'punct' && t.text === '{') {
      // A selector without a name in front: {__name__="x", job="y"}.
      const end = skipGroup(tokens, i)
      for (const n of namesInMatchers(tokens, i, end)) names.add(n)
      i = end
      continue
    }
    if (t.kind === 'punct' && t.text === '[') {
      i = skipGroup(tokens, i) // a range or a subquery: durations only
      continue
    }
    if (t.kind !== 'ident') {
      i++
      continue
    }
    const word = t.text.toLowerCase()
    if (LABEL_LISTS.has(word)) {
      i = next?.text === '(' ? skipGroup(tokens, i + 1) : i + 1
      continue
    }
    if (KEYWORDS.has(word) || next?.text === '(' || (AGGREGATIONS.has(word) && next && LABEL_LISTS.has(next.text.toLowerCase()))) {
      i++
      continue
    }
    names.add(t.text)
    i++
    if (tokens[i]?.text === '{') i = skipGroup(tokens, i)
  }
  return [...names].sort()
}
