/**
 * Where @huggingface/jinja departs from Python's jinja2 on real chat templates, a small
 * rewrite of the parsed template brings it back, so that templates render as Hugging Face
 * transformers renders them.
 *
 * Undefined values under string and sequence filters. jinja2's Undefined prints as '' and
 * iterates as an empty sequence, so `{{ param.description | trim }}` is '' for a parameter
 * without a description, `undefined | length` is 0 and `undefined | items` is empty. The
 * Hermes-style tool-use templates (macros that turn a tool's JSON schema into a Python-like
 * signature and docstring) rely on it; @huggingface/jinja throws `Cannot apply filter "trim"
 * to type: UndefinedValue`. The rewrite turns `x | f` into `x | default(E) | f`, where E is
 * '' for string filters, [] for sequence filters and {} for `items`: `default` replaces an
 * undefined value only (not none, not false), so defined values are untouched.
 *
 * Lookups with a key of the wrong type. jinja2 answers Undefined for `map[key]` when the
 * key is, say, a list (the same templates do `type_map[schema.type]`, and a JSON schema's
 * `type` may be a list of types) or a number; @huggingface/jinja throws. The rewrite turns
 * `obj[k]` into `obj[k if k is string or (k is integer and obj is not mapping) else SENTINEL]`,
 * SENTINEL being a key no JSON object has.
 *
 * The `iterable` test. In jinja2 mappings and Undefined are iterable too (the templates
 * test `schema.type is iterable` on a schema without a type); @huggingface/jinja says
 * false. The rewrite turns `x is iterable` into `x is iterable or x is mapping or x is undefined`.
 *
 * Loops over Undefined. jinja2 runs `{% for t in schema.type %}` zero times when the value is
 * undefined (and runs the else block); @huggingface/jinja throws. The rewrite loops over
 * `iterable | default([])`.
 *
 * The rewrites evaluate an operand more than once; template expressions have no side effects.
 *
 * Not covered: printing a boolean (`{{ flag }}` is True/False in jinja2, true/false here) and
 * floats that JSON cannot tell from integers (1.0 prints as 1).
 */

/** The empty value an undefined operand stands for, per filter. */
const EMPTY_FOR_FILTER: Readonly<Record<string, 'string' | 'array' | 'object'>> = {
  trim: 'string',
  upper: 'string',
  lower: 'string',
  title: 'string',
  capitalize: 'string',
  indent: 'string',
  string: 'string',
  length: 'string',
  count: 'string',
  wordcount: 'string',
  list: 'array',
  join: 'array',
  reverse: 'array',
  sort: 'array',
  unique: 'array',
  items: 'object',
};

interface Node {
  type: string;
  [k: string]: unknown;
}

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && typeof (v as Node).type === 'string';
}

function filterName(filter: unknown): string | undefined {
  if (!isNode(filter)) return undefined;
  if (filter.type === 'Identifier') return filter.value as string;
  if (filter.type === 'CallExpression' && isNode(filter.callee) && filter.callee.type === 'Identifier') return filter.callee.value as string;
  return undefined;
}

// The node shapes @huggingface/jinja's interpreter reads (it dispatches on `type`).
function emptyLiteral(kind: 'string' | 'array' | 'object'): Node {
  if (kind === 'string') return { type: 'StringLiteral', value: '' };
  if (kind === 'array') return { type: 'ArrayLiteral', value: [] };
  return { type: 'ObjectLiteral', value: new Map() };
}

function withDefault(operand: Node, kind: 'string' | 'array' | 'object'): Node {
  return {
    type: 'FilterExpression',
    operand,
    filter: { type: 'CallExpression', callee: { type: 'Identifier', value: 'default' }, args: [emptyLiteral(kind)] },
  };
}

const SENTINEL_KEY = '\u0000sparrow: no such key\u0000';

function test(operand: Node, name: string): Node {
  return { type: 'TestExpression', operand, negate: false, test: { type: 'Identifier', value: name } };
}

function or(left: Node, right: Node): Node {
  return { type: 'BinaryExpression', operator: { type: 'AdditiveBinaryOperator', value: 'or' }, left, right };
}

function and(left: Node, right: Node): Node {
  return { type: 'BinaryExpression', operator: { type: 'AdditiveBinaryOperator', value: 'and' }, left, right };
}

/** `k if k is string or (k is integer and obj is not mapping) else SENTINEL` */
function guardedKey(key: Node, object: Node): Node {
  const notMapping: Node = { type: 'TestExpression', operand: object, negate: true, test: { type: 'Identifier', value: 'mapping' } };
  return {
    type: 'Ternary',
    condition: or(test(key, 'string'), and(test(key, 'integer'), notMapping)),
    trueExpr: key,
    falseExpr: { type: 'StringLiteral', value: SENTINEL_KEY },
  };
}

/** `x is iterable or x is mapping or x is undefined`, negated for `is not iterable`. */
function iterableTest(node: Node): Node {
  const x = node.operand as Node;
  const any = or(or(test(x, 'iterable'), test(x, 'mapping')), test(x, 'undefined'));
  return node.negate ? { type: 'UnaryExpression', operator: { type: 'UnaryOperator', value: 'not' }, argument: any } : any;
}

const LITERAL_KEYS = new Set(['StringLiteral', 'IntegerLiteral', 'SliceExpression']);

/** Rewrites a parsed template (the `parsed` program of a Template) in place; returns how many filters it guarded. */
export function patchUndefinedFilters(program: unknown): number {
  let count = 0;
  const seen = new Set<object>();
  const visit = (v: unknown): void => {
    if (typeof v !== 'object' || v === null || seen.has(v)) return;
    seen.add(v);
    if (Array.isArray(v)) {
      for (const x of v) visit(x);
      return;
    }
    if (v instanceof Map) {
      for (const [k, x] of v) {
        visit(k);
        visit(x);
      }
      return;
    }
    const node = v as Node;
    for (const key of Object.keys(node)) {
      const child = node[key];
      visit(child);
      // Replacements of a child node (made after the child's own subtree was visited).
      if (isNode(child) && child.type === 'TestExpression' && isNode(child.test) && child.test.value === 'iterable' && isNode(child.operand)) {
        const replaced = iterableTest(child);
        seen.add(replaced);
        node[key] = replaced;
        count++;
      }
    }
    if (node.type === 'For' && isNode(node.iterable)) {
      const holder = node.iterable.type === 'SelectExpression' ? node.iterable : node;
      const field = holder === node ? 'iterable' : 'lhs';
      const it = holder[field];
      if (isNode(it) && !(it.type === 'FilterExpression' && filterName(it.filter) === 'default')) {
        const guarded = withDefault(it, 'array');
        seen.add(guarded);
        holder[field] = guarded;
        count++;
      }
    }
    if (node.type === 'MemberExpression' && node.computed === true && isNode(node.property) && !LITERAL_KEYS.has(node.property.type)) {
      const guarded = guardedKey(node.property, node.object as Node);
      seen.add(guarded);
      node.property = guarded;
      count++;
    }
    if (node.type === 'FilterExpression') {
      const kind = EMPTY_FOR_FILTER[filterName(node.filter) ?? ''];
      if (kind && isNode(node.operand)) {
        const guarded = withDefault(node.operand, kind);
        seen.add(guarded);
        node.operand = guarded;
        count++;
      }
    }
  };
  visit(program);
  return count;
}
