/**
 * JSON Schema -> GBNF. The grammar generates JSON text that validates against the schema.
 *
 * Covered (drafts 4 to 2020-12): type (and type arrays), properties, required,
 * additionalProperties (false, true, a schema), patternProperties, enum, const, items,
 * prefixItems, draft-4 tuples (items array + additionalItems), minItems/maxItems,
 * uniqueItems false (or on at most one item), dependentRequired/dependencies,
 * minProperties/maxProperties, anyOf, oneOf (generated as anyOf: an output matching two
 * branches is possible), allOf (merged), keywords beside $ref (applied with it), $ref to
 * any JSON pointer of the document, to $id-named schemas and anchors (recursion included),
 * string pattern (a regex subset), format (date, time, date-time, uuid, email, uri,
 * hostname, ipv4, ipv6), minLength/maxLength (up to 65536; with a pattern where exact),
 * integer bounds (exact, draft-4 booleans too), number bounds (integral minimum/maximum,
 * exact). Keys that are no validation keyword of any draft (annotations, identifiers,
 * vendor extensions) are ignored; a validation keyword not enforced is an
 * ERR_SCHEMA_UNSUPPORTED error naming it and where it is.
 *
 * Choices (each only narrows the outputs, never lets an invalid one through):
 * - properties come in the schema's order; absent `additionalProperties` means no extra keys;
 * - whitespace between tokens is bounded (none, one space, or a newline and up to 20
 *   spaces/tabs), so a model cannot loop on whitespace;
 * - numbers without bounds have at most 16 integer digits, 16 fraction digits, 3 exponent
 *   digits; number bounds allow no exponent.
 */
import { SparrowError } from '../errors.js';
import { MAX_REPETITION } from './gbnf.js';

type Schema = Record<string, unknown>;

/**
 * The keywords that constrain which instances validate, in every published draft (4, 6, 7,
 * 2019-09, 2020-12): the validation vocabulary plus the applicators and references. Every
 * other key of a schema object is an annotation (title, description, default, examples,
 * readOnly, deprecated, $comment, contentMediaType, ...), an identifier ($schema, $id, id,
 * $anchor, $vocabulary), a container ($defs, definitions) or a vendor extension (x-*, ...):
 * none of them changes what validates, so they are ignored. A validation keyword that the
 * compiler does not enforce is refused by name.
 */
const VALIDATION_KEYWORDS: Record<string, readonly string[]> = {
  draft4: [
    'type', 'enum', 'multipleOf', 'maximum', 'exclusiveMaximum', 'minimum', 'exclusiveMinimum', 'maxLength', 'minLength',
    'pattern', 'items', 'additionalItems', 'maxItems', 'minItems', 'uniqueItems', 'maxProperties', 'minProperties',
    'required', 'properties', 'patternProperties', 'additionalProperties', 'dependencies', 'allOf', 'anyOf', 'oneOf',
    'not', '$ref', 'format',
  ],
  draft6: ['const', 'contains', 'propertyNames'],
  draft7: ['if', 'then', 'else'],
  'draft2019-09': [
    'dependentRequired', 'dependentSchemas', 'unevaluatedProperties', 'unevaluatedItems', 'maxContains', 'minContains',
    '$recursiveRef',
  ],
  'draft2020-12': ['prefixItems', '$dynamicRef'],
};
const VALIDATION = new Set(Object.values(VALIDATION_KEYWORDS).flat());
/** True for keys that do not constrain validation (annotations, identifiers, vendor extensions). */
const isAnnotation = (k: string): boolean => !VALIDATION.has(k);
const ANNOTATIONS = { has: isAnnotation };
const KEYWORDS = new Set([
  'type', 'properties', 'patternProperties', 'required', 'additionalProperties', 'enum', 'const', 'items', 'prefixItems', 'minItems', 'maxItems',
  'additionalItems', 'dependencies', 'dependentRequired', 'minProperties', 'maxProperties', 'uniqueItems',
  'anyOf', 'oneOf', 'allOf', '$ref', 'pattern', 'format', 'minLength', 'maxLength', 'minimum', 'maximum',
  'exclusiveMinimum', 'exclusiveMaximum',
]);
const FORMATS = new Set(['date', 'time', 'date-time', 'uuid', 'email', 'uri', 'hostname', 'ipv4', 'ipv6']);

function unsupported(path: string, what: string): SparrowError {
  return new SparrowError(`JSON schema at ${path || '#'}: unsupported ${what}`, 'ERR_SCHEMA_UNSUPPORTED');
}
function invalid(path: string, what: string): SparrowError {
  return new SparrowError(`JSON schema at ${path || '#'}: ${what}`, 'ERR_SCHEMA_INVALID');
}

/** A GBNF string literal for raw text. */
export function lit(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (c === 10) out += '\\n';
    else if (c === 13) out += '\\r';
    else if (c === 9) out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}

function cpEsc(c: number): string {
  if (c > 0xffff) return '\\U' + c.toString(16).padStart(8, '0');
  if (c < 0x20 || c > 0x7e || '[]^-\\"'.includes(String.fromCharCode(c))) return '\\u' + c.toString(16).padStart(4, '0');
  return String.fromCharCode(c);
}

const BASE: Record<string, string> = {
  ws: '| " " | "\\n" [ \\t]{0,20}',
  'json-value': 'json-object | json-array | json-string | json-number | ("true" | "false" | "null") ws',
  'json-object': '"{" ws ( json-string ":" ws json-value ( "," ws json-string ":" ws json-value )* )? "}" ws',
  'json-array': '"[" ws ( json-value ( "," ws json-value )* )? "]" ws',
  'json-string': '"\\"" json-char* "\\"" ws',
  'json-char': '[^"\\\\\\x00-\\x1f] | "\\\\" ( ["\\\\/bfnrt] | "u" [0-9a-fA-F]{4} )',
  // One code point per item (lengths count code points): \u escapes of UTF-16 surrogates
  // are left out, since a pair of them is a single character.
  'json-lchar': '[^"\\\\\\x00-\\x1f] | "\\\\" ( ["\\\\/bfnrt] | "u" ( [0-9a-cA-CefEF] [0-9a-fA-F]{3} | [dD] [0-7] [0-9a-fA-F]{2} ) )',
  'json-number': '"-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )? ws',
  'json-integer': '"-"? ( "0" | [1-9] [0-9]{0,15} ) ws',
  'json-boolean': '( "true" | "false" ) ws',
  'json-null': '"null" ws',
};

// Formats (ajv-formats' full mode: real calendar dates, times with a time zone).
const FORMAT_RULES: Record<string, Record<string, string>> = {
  date: {
    'fmt-date': 'fmt-year "-" ( ( "01" | "03" | "05" | "07" | "08" | "10" | "12" ) "-" fmt-d31 | ( "04" | "06" | "09" | "11" ) "-" fmt-d30 | "02-" fmt-d28 ) | fmt-leap "-02-29"',
    'fmt-year': '[0-9]{4}',
    'fmt-leap': '[0-9] [0-9] ( "0" [48] | [2468] [048] | [13579] [26] ) | ( "0" [048] | [2468] [048] | [13579] [26] ) "00"',
    'fmt-d28': '"0" [1-9] | "1" [0-9] | "2" [0-8]',
    'fmt-d30': '"0" [1-9] | [12] [0-9] | "30"',
    'fmt-d31': '"0" [1-9] | [12] [0-9] | "3" [01]',
  },
  time: {
    'fmt-time': '( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] ":" [0-5] [0-9] ( "." [0-9]{1,6} )? ( "Z" | [+-] ( [01] [0-9] | "2" [0-3] ) ":" [0-5] [0-9] )',
  },
  uuid: {
    'fmt-uuid': '[0-9a-fA-F]{8} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{4} "-" [0-9a-fA-F]{12}',
  },
  // RFC 3986 URIs with a scheme (ajv-formats "uri"): an authority with a registered name
  // and a path, or a rootless path (mailto:, urn:); query and fragment.
  uri: {
    'fmt-uri': 'fmt-scheme ":" ( "//" fmt-regname ( ":" [0-9]* )? ( "/" fmt-pchar* )* | fmt-pchar+ ( "/" fmt-pchar* )* ) ( "?" fmt-qchar* )? ( "#" fmt-qchar* )?',
    'fmt-scheme': '[a-zA-Z] [a-zA-Z0-9+.\\x2d]*',
    'fmt-regname': '( [a-zA-Z0-9._~!$&\'()*+,;=\\x2d] | fmt-pct )+',
    'fmt-pchar': '[a-zA-Z0-9._~!$&\'()*+,;=:@\\x2d] | fmt-pct',
    'fmt-qchar': 'fmt-pchar | [/?]',
    'fmt-pct': '"%" [0-9a-fA-F] [0-9a-fA-F]',
  },
  // Up to 5 labels of up to 40 characters: within the 253 characters a hostname may have.
  hostname: {
    'fmt-hostname': 'fmt-hlabel ( "." fmt-hlabel ){0,4}',
    'fmt-hlabel': '[a-zA-Z0-9] ( [a-zA-Z0-9\\x2d]{0,38} [a-zA-Z0-9] )?',
  },
  ipv4: {
    'fmt-ipv4': 'fmt-octet "." fmt-octet "." fmt-octet "." fmt-octet',
    'fmt-octet': '"25" [0-5] | "2" [0-4] [0-9] | "1" [0-9] [0-9] | [1-9]? [0-9]',
  },
  // Eight groups, or k before and at most 7 - k after one "::" (no embedded IPv4).
  ipv6: {
    'fmt-ipv6': [
      'fmt-h16 ( ":" fmt-h16 ){7}',
      ...[0, 1, 2, 3, 4, 5, 6, 7].map((k) => {
        const pre = k === 0 ? '' : `fmt-h16 ( ":" fmt-h16 ){${k - 1}} `;
        const post = k === 7 ? '' : ` ( fmt-h16 ( ":" fmt-h16 ){0,${6 - k}} )?`;
        return `${pre}"::"${post}`;
      }),
    ].join(' | '),
    'fmt-h16': '[0-9a-fA-F]{1,4}',
  },
  email: {
    'fmt-email': 'fmt-atom ( "." fmt-atom )* "@" ( fmt-label "." )+ fmt-label',
    'fmt-atom': "[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{1,32}",
    'fmt-label': '[a-zA-Z0-9] ( [a-zA-Z0-9-]{0,20} [a-zA-Z0-9] )?',
  },
};

/** The fewest and most characters each format's grammar writes (unbounded ones absent). */
const FORMAT_LENGTHS: Record<string, [number, number]> = {
  date: [10, 10],
  time: [9, 21], // hh:mm:ss, up to 6 fraction digits, Z or +hh:mm
  'date-time': [20, 32],
  uuid: [36, 36],
  ipv4: [7, 15],
  ipv6: [2, 39],
  hostname: [1, 204], // 5 labels of up to 40 characters and 4 dots
};

export function schemaToGbnf(schema: unknown): string {
  return new SchemaCompiler(schema).compile();
}

class SchemaCompiler {
  private readonly rules = new Map<string, string>();
  private readonly refs = new Map<string, string>();
  private readonly shared = new Map<string, string>();
  private depth = 0;
  private counter = 0;

  constructor(private readonly root: unknown) {}

  compile(): string {
    this.index();
    const main = this.visit(this.root, '#', 'root-value');
    this.rules.set('root', main);
    const lines = [`root ::= ${this.rules.get('root')}`];
    for (const [k, v] of this.rules) if (k !== 'root') lines.push(`${k} ::= ${v}`);
    return lines.join('\n') + '\n';
  }

  private base(name: string): string {
    if (name in BASE) {
      if (!this.rules.has(name)) {
        this.rules.set(name, BASE[name]!);
        // Dependencies.
        for (const dep of BASE[name]!.match(/json-[a-z]+|\bws\b/g) ?? []) this.base(dep);
      }
    }
    return name;
  }

  private rule(hint: string, body: string): string {
    const name = this.name(hint);
    this.rules.set(name, body);
    return name;
  }

  /** A fresh rule name from a hint (property names may hold any character: GBNF names take letters, digits and '-'). */
  private name(hint: string): string {
    return `${hint.replace(/[^a-zA-Z0-9-]/g, '-').replace(/-+/g, '-').slice(0, 40)}-${this.counter++}`;
  }

  /**
   * Base URIs and identifiers, found once over the whole document: the base of every schema
   * object (`$id`, or `id` in drafts 4-6, starts a new one relative to the enclosing base), the
   * schema each identifier names, and the `$anchor`s and plain-name fragment ids.
   */
  private readonly bases = new WeakMap<object, string>();
  private readonly ids = new Map<string, unknown>();
  private readonly ambiguous = new Set<string>();
  private curBase = DEFAULT_BASE;
  private indexed = false;

  private index(): void {
    if (this.indexed) return;
    this.indexed = true;
    const setId = (key: string, o: object): void => {
      if (this.ids.has(key) && this.ids.get(key) !== o) this.ambiguous.add(key);
      else this.ids.set(key, o);
    };
    const walk = (node: unknown, base: string, depth: number): void => {
      if (!node || typeof node !== 'object' || depth > 256) return;
      if (Array.isArray(node)) {
        for (const x of node) walk(x, base, depth + 1);
        return;
      }
      const o = node as Schema;
      const id = typeof o.$id === 'string' ? o.$id : typeof o.id === 'string' ? o.id : undefined;
      if (id !== undefined) {
        const u = safeUrl(id, base);
        if (u) {
          const frag = u.hash;
          u.hash = '';
          if (frag.length > 1 && !frag.startsWith('#/')) setId(`${u.href}${frag}`, o); // draft 4-7 plain-name fragment
          else {
            base = u.href;
            setId(base, o);
          }
        }
      }
      if (typeof o.$anchor === 'string') setId(`${base}#${o.$anchor}`, o);
      this.bases.set(o, base);
      for (const [k, v] of Object.entries(o)) {
        if (k === 'const' || k === 'enum' || k === 'default' || k === 'examples' || k === 'example') continue;
        walk(v, base, depth + 1);
      }
    };
    walk(this.root, DEFAULT_BASE, 0);
    this.ids.set(DEFAULT_BASE, this.root);
  }

  /**
   * Resolves a $ref against the current base: a JSON pointer (`#/...`, with ~0 ~1 and
   * percent escapes, into any part of the document), a schema named by its `$id`/`id`
   * (relative or absolute, with or without a pointer after it) or an anchor. Nothing is
   * fetched: a reference to a document outside this one is refused.
   */
  private resolveRef(ref: string, path: string): { schema: unknown; key: string; base: string } {
    this.index();
    const u = safeUrl(ref, this.curBase);
    if (!u) throw unsupported(path, `$ref "${ref}" (not a URI reference)`);
    const frag = u.hash;
    u.hash = '';
    const doc = u.href;
    if (this.ambiguous.has(doc) || this.ambiguous.has(doc + frag)) throw unsupported(path, `$ref "${ref}" (two schemas in this document have that identifier)`);
    let target: unknown;
    let base = doc;
    if (frag.length > 1 && !frag.startsWith('#/')) {
      if (!this.ids.has(doc + frag)) throw unsupported(path, `$ref "${ref}" (no schema in this document has that anchor)`);
      target = this.ids.get(doc + frag);
      base = this.bases.get(target as object) ?? doc;
    } else {
      if (!this.ids.has(doc)) throw unsupported(path, `$ref "${ref}" (only references within this document are followed)`);
      target = this.ids.get(doc);
      if (frag.length > 1) {
        for (const raw of frag.slice(2).split('/')) {
          let seg: string;
          try {
            seg = decodeURIComponent(raw);
          } catch {
            throw invalid(path, `$ref "${ref}": bad percent escape`);
          }
          seg = seg.replace(/~1/g, '/').replace(/~0/g, '~');
          if (!target || typeof target !== 'object' || !Object.prototype.hasOwnProperty.call(target, seg)) {
            throw invalid(path, `$ref "${ref}" points nowhere`);
          }
          target = (target as Schema)[seg];
        }
        if (target && typeof target === 'object') base = this.bases.get(target) ?? base;
      }
    }
    return { schema: target, key: `${doc}${frag || '#'}`, base };
  }

  /** Returns a GBNF expression (usually a rule name) for a schema; values end with ws. */
  private visit(schema: unknown, path: string, hint: string): string {
    if (schema === true) return this.base('json-value');
    if (schema === false) throw unsupported(path, 'schema false (nothing validates)');
    if (!schema || typeof schema !== 'object' || Array.isArray(schema)) throw invalid(path, 'a schema must be an object or a boolean');
    const s = schema as Schema;
    const outer = this.curBase;
    this.curBase = this.bases.get(s) ?? outer;
    if (++this.depth > 400) throw unsupported(path, 'schemas nested (or referring to one another through allOf) more than 400 deep');
    try {
      return this.visitObject(s, path, hint);
    } finally {
      this.curBase = outer;
      this.depth--;
    }
  }

  private visitObject(s: Schema, path: string, hint: string): string {
    for (const k of Object.keys(s)) {
      if (VALIDATION.has(k) && !KEYWORDS.has(k)) throw unsupported(path, `keyword "${k}"`);
    }
    if (s.$ref !== undefined) {
      if (typeof s.$ref !== 'string') throw invalid(path, '$ref must be a string');
      const others = Object.keys(s).filter((k) => k !== '$ref' && !ANNOTATIONS.has(k));
      if (others.length > 0) {
        // Keywords beside $ref: applied with it (2019-09 on); drafts 4-7 ignore them, so
        // applying them only narrows.
        const { $ref, ...rest } = s;
        return this.visit({ ...rest, allOf: [{ $ref }, ...(Array.isArray(rest.allOf) ? rest.allOf : rest.allOf === undefined ? [] : [rest.allOf])] }, path, hint);
      }
      const { schema: target, key, base } = this.resolveRef(s.$ref, path);
      let name = this.refs.get(key);
      if (!name) {
        name = this.rule(`ref-${key.split(/[/#]/).pop()}`, '');
        this.refs.set(key, name);
        const outer = this.curBase;
        this.curBase = base;
        try {
          this.rules.set(name, this.visit(target, refPath(key), name));
        } finally {
          this.curBase = outer;
        }
      }
      return name;
    }
    if (s.allOf !== undefined) {
      if (!Array.isArray(s.allOf) || s.allOf.length === 0) throw invalid(path, 'allOf must be a non-empty array');
      const { allOf, ...rest } = s;
      let merged: Schema = rest;
      (allOf as unknown[]).forEach((sub, i) => {
        merged = mergeSchemas(merged, this.deref(sub, `${path}/allOf/${i}`), `${path}/allOf/${i}`);
      });
      return this.visit(merged, path, hint);
    }
    for (const key of ['anyOf', 'oneOf'] as const) {
      if (s[key] !== undefined) {
        if (!Array.isArray(s[key]) || (s[key] as unknown[]).length === 0) throw invalid(path, `${key} must be a non-empty array`);
        const { [key]: branches, ...rest } = s;
        const siblings = Object.keys(rest).some((k) => !ANNOTATIONS.has(k));
        const alts = (branches as unknown[]).map((b, i) => {
          const p = `${path}/${key}/${i}`;
          return this.visit(siblings ? mergeSchemas(rest, this.deref(b, p), p) : b, p, `${hint}-${i}`);
        });
        return this.rule(hint, alts.join(' | '));
      }
    }
    if (s.const !== undefined) return this.rule(hint, this.literal(s.const, s, path));
    if (s.enum !== undefined) {
      if (!Array.isArray(s.enum) || s.enum.length === 0) throw invalid(path, 'enum must be a non-empty array');
      const vals = s.enum.filter((v) => typeMatches(v, s.type));
      if (vals.length === 0) throw invalid(path, 'no enum value matches the type');
      return this.rule(hint, vals.map((v) => this.literal(v, s, path)).join(' | '));
    }
    let types: string[];
    if (s.type === undefined) {
      const keys = Object.keys(s);
      if (keys.some((k) => ['properties', 'patternProperties', 'required', 'additionalProperties', 'dependencies', 'dependentRequired', 'minProperties', 'maxProperties'].includes(k))) types = ['object'];
      else if (keys.some((k) => ['items', 'prefixItems', 'minItems', 'maxItems', 'additionalItems', 'uniqueItems'].includes(k))) types = ['array'];
      else if (keys.some((k) => ['pattern', 'format', 'minLength', 'maxLength'].includes(k))) types = ['string'];
      else if (keys.some((k) => ['minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum'].includes(k))) types = ['number'];
      else return this.base('json-value');
    } else if (typeof s.type === 'string') types = [s.type];
    else if (Array.isArray(s.type) && s.type.length > 0 && s.type.every((t) => typeof t === 'string')) types = s.type as string[];
    else throw invalid(path, 'type must be a string or an array of strings');
    if (types.includes('integer') && types.includes('number')) types = types.filter((t) => t !== 'integer');
    const alts = types.map((t) => this.typed(t, s, path, hint));
    return alts.length === 1 ? alts[0]! : this.rule(hint, alts.join(' | '));
  }

  private deref(s: unknown, path: string): unknown {
    let cur = s;
    const outer = this.curBase;
    try {
      for (let i = 0; i < 32 && cur && typeof cur === 'object' && typeof (cur as Schema).$ref === 'string'; i++) {
        this.curBase = this.bases.get(cur as object) ?? this.curBase;
        const r = this.resolveRef((cur as Schema).$ref as string, path);
        cur = r.schema;
        this.curBase = r.base;
      }
    } finally {
      this.curBase = outer;
    }
    return cur;
  }

  private literal(v: unknown, s: Schema, path: string): string {
    if (!typeMatches(v, s.type)) throw invalid(path, 'const does not match the type');
    return `${lit(JSON.stringify(v))} ${this.base('ws')}`;
  }

  private typed(t: string, s: Schema, path: string, hint: string): string {
    switch (t) {
      case 'null': return this.base('json-null');
      case 'boolean': return this.base('json-boolean');
      case 'string': return this.string(s, path, hint);
      case 'integer': return this.integer(s, path, hint);
      case 'number': return this.number(s, path, hint);
      case 'object': return this.object(s, path, hint);
      case 'array': return this.array(s, path, hint);
      default: throw invalid(path, `unknown type "${t}"`);
    }
  }

  private string(s: Schema, path: string, hint: string): string {
    const minL = s.minLength === undefined ? 0 : nonNegInt(s.minLength, path, 'minLength');
    const maxL = s.maxLength === undefined ? Infinity : nonNegInt(s.maxLength, path, 'maxLength');
    if (maxL < minL) throw invalid(path, 'maxLength is below minLength');
    const hasLen = s.minLength !== undefined || s.maxLength !== undefined;
    if (s.format !== undefined) {
      if (typeof s.format !== 'string' || !FORMATS.has(s.format)) throw unsupported(path, `format "${String(s.format)}"`);
      if (s.pattern !== undefined) throw unsupported(path, 'format together with pattern');
      // A length is kept only where the format's own lengths already satisfy it.
      const span = FORMAT_LENGTHS[s.format];
      if (hasLen && !(span && span[0] >= minL && span[1] <= maxL)) throw unsupported(path, `format "${s.format}" together with minLength/maxLength`);
      const f = s.format;
      for (const part of f === 'date-time' ? ['date', 'time'] : [f]) {
        for (const [k, v] of Object.entries(FORMAT_RULES[part]!)) this.rules.set(k, v);
      }
      const body = f === 'date-time' ? 'fmt-date "T" fmt-time' : `fmt-${f}`;
      return this.rule(hint, `"\\"" ${body} "\\"" ${this.base('ws')}`);
    }
    if (s.pattern !== undefined) {
      if (typeof s.pattern !== 'string') throw invalid(path, 'pattern must be a string');
      this.base('json-char');
      if (hasLen) this.base('json-lchar');
      const body = regexToGbnf(s.pattern, path, hasLen ? { min: minL, max: maxL } : undefined);
      return this.rule(hint, `"\\"" ${body} "\\"" ${this.base('ws')}`);
    }
    if (!hasLen) return this.base('json-string');
    this.base('json-lchar');
    const rep = maxL === Infinity ? `{${minL},}` : `{${minL},${maxL}}`;
    // A count is a chain of rules, one per character (masks are shared along it, so long
    // chains cost memory, not mask time); the longest the grammar parser takes.
    if ((maxL !== Infinity && maxL > MAX_REPETITION) || minL > MAX_REPETITION) throw unsupported(path, `string lengths above ${MAX_REPETITION}`);
    // Strings of the same length bounds share one rule (a schema often repeats maxLength: 32767).
    const key = `string${rep}`;
    let name = this.shared.get(key);
    if (!name) {
      name = this.rule(`str-${minL}-${maxL === Infinity ? 'inf' : maxL}`, `"\\"" json-lchar${rep} "\\"" ${this.base('ws')}`);
      this.shared.set(key, name);
    }
    return name;
  }

  private bounds(s: Schema, path: string, integer: boolean): { lo: bigint | null; hi: bigint | null } {
    let lo: bigint | null = null;
    let hi: bigint | null = null;
    const num = (k: string): number | undefined => {
      const v = s[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(path, `${k} must be a number`);
      return v;
    };
    // Draft 4 spells exclusive bounds as booleans beside minimum/maximum.
    const draft4 = (k: string, bound: string): Schema => {
      const v = s[k];
      if (typeof v !== 'boolean') return {};
      if (v && s[bound] === undefined) throw invalid(path, `${k}: true needs ${bound}`);
      return v ? { [bound]: undefined, [k]: s[bound] } : { [k]: undefined };
    };
    s = { ...s, ...draft4('exclusiveMinimum', 'minimum'), ...draft4('exclusiveMaximum', 'maximum') };
    const min = num('minimum');
    const max = num('maximum');
    const xmin = num('exclusiveMinimum');
    const xmax = num('exclusiveMaximum');
    if (integer) {
      if (min !== undefined) lo = BigInt(Math.ceil(min));
      if (xmin !== undefined) lo = maxB(lo, BigInt(Math.floor(xmin)) + 1n);
      if (max !== undefined) hi = BigInt(Math.floor(max));
      if (xmax !== undefined) hi = minB(hi, BigInt(Math.ceil(xmax)) - 1n);
    } else {
      if (xmin !== undefined || xmax !== undefined) throw unsupported(path, 'exclusiveMinimum/exclusiveMaximum on a number (use integer, or minimum/maximum)');
      if ((min !== undefined && !Number.isInteger(min)) || (max !== undefined && !Number.isInteger(max))) {
        throw unsupported(path, 'a non-integral minimum/maximum on a number');
      }
      if (min !== undefined) lo = BigInt(min);
      if (max !== undefined) hi = BigInt(max);
    }
    if (lo !== null && hi !== null && hi < lo) throw invalid(path, 'no number fits the bounds');
    return { lo, hi };
  }

  private integer(s: Schema, path: string, hint: string): string {
    const { lo, hi } = this.bounds(s, path, true);
    if (lo === null && hi === null) return this.base('json-integer');
    return this.rule(hint, `( ${intRange(lo, hi)} ) ${this.base('ws')}`);
  }

  private number(s: Schema, path: string, hint: string): string {
    const { lo, hi } = this.bounds(s, path, false);
    if (lo === null && hi === null) return this.base('json-number');
    // v = sign (I . F): split at 0 into the non-negative and the negative part.
    const frac = '( "." [0-9]{1,16} )?';
    const zeros = '( "." "0"{1,16} )?';
    const alts: string[] = [];
    // Non-negative part: v in [max(lo,0), hi]: I in [a, hi - 1] with any fraction, or I = hi with a zero fraction.
    if (hi === null || hi >= 0n) {
      const a = lo === null || lo < 0n ? 0n : lo;
      if (hi === null) alts.push(`( ${intRange(a, null)} ) ${frac}`);
      else {
        if (hi - 1n >= a) alts.push(`( ${intRange(a, hi - 1n)} ) ${frac}`);
        alts.push(`${lit(hi.toString())} ${zeros}`);
      }
    }
    // Negative part: v = -(I.F) in [lo, min(hi, 0)); |v| in (max(-hi,0), -lo].
    if (lo === null || lo < 0n) {
      const top = lo === null ? null : -lo; // |v| <= top
      const bottom = hi === null || hi >= 0n ? 0n : -hi; // |v| >= bottom
      // I in [bottom, top - 1] any fraction (not all zero when I = 0 and bottom = 0 is fine: -0.0 is 0),
      // or I = top with a zero fraction.
      if (top === null) alts.push(`"-" ( ${intRange(bottom, null)} ) ${frac}`);
      else {
        if (top - 1n >= bottom) alts.push(`"-" ( ${intRange(bottom, top - 1n)} ) ${frac}`);
        alts.push(`"-" ${lit(top.toString())} ${zeros}`);
      }
    }
    return this.rule(hint, `( ${alts.join(' | ')} ) ${this.base('ws')}`);
  }

  private object(s: Schema, path: string, hint: string): string {
    let props = (s.properties ?? {}) as Schema;
    if (typeof props !== 'object' || Array.isArray(props)) throw invalid(path, 'properties must be an object');
    const required = [...new Set((s.required ?? []) as unknown[])]; // distinct: minProperties counts them
    if (!Array.isArray(s.required ?? []) || required.some((r) => typeof r !== 'string')) throw invalid(path, 'required must be an array of strings');
    const ap = s.additionalProperties;
    const hasProps = s.properties !== undefined;
    // Absent additionalProperties: extra keys only when no properties are declared.
    const extra: unknown = ap === undefined ? (hasProps ? false : true) : ap;
    let extraKeys = true; // false: no keys beyond the declared and required ones
    const mayAppear = (k: string) => k in props || required.includes(k) || extra !== false || s.patternProperties !== undefined;
    // dependentRequired and dependencies: a property's dependencies are made required
    // (narrower than "required when it is present", never looser). A schema dependency
    // applies when its property is required; on an optional property it is refused.
    const deps: Array<[string, unknown]> = [];
    for (const key of ['dependentRequired', 'dependencies'] as const) {
      const d = s[key];
      if (d === undefined) continue;
      if (!d || typeof d !== 'object' || Array.isArray(d)) throw invalid(path, `${key} must be an object`);
      deps.push(...Object.entries(d as Schema));
    }
    const depSchemas: unknown[] = [];
    for (const [k, d] of deps) {
      if (Array.isArray(d)) {
        if (d.some((x) => typeof x !== 'string')) throw invalid(path, `dependencies of "${k}" must be strings`);
        if (mayAppear(k)) for (const x of d as string[]) if (!required.includes(x)) required.push(x);
      } else if (d !== true && (d === false || (typeof d === 'object' && d !== null))) {
        if (required.includes(k)) depSchemas.push(d);
        else if (mayAppear(k)) throw unsupported(path, `dependencies: a schema for the optional property "${k}"`);
      } else if (d !== true) throw invalid(path, `dependencies of "${k}" must be an array or a schema`);
    }
    if (depSchemas.length > 0) {
      const { dependencies: _d, ...rest } = s;
      return this.visit({ ...rest, dependencies: Object.fromEntries(deps.filter(([, d]) => Array.isArray(d))), allOf: depSchemas }, path, hint);
    }
    // minProperties / maxProperties, by narrowing: optional declared properties become
    // required (in order) up to the minimum; past the maximum, no extra keys and the
    // optional properties after the first ones are left out.
    const count = (k: string) => nonNegInt(s[k], path, k);
    if (s.minProperties !== undefined) {
      const minP = count('minProperties');
      for (const k of Object.keys(props)) {
        if (required.length >= minP) break;
        if (!required.includes(k)) required.push(k);
      }
      if (required.length < minP) throw unsupported(path, `minProperties ${minP} above the declared properties`);
    }
    if (s.maxProperties !== undefined) {
      const maxP = count('maxProperties');
      const req = new Set(required as string[]);
      if (req.size > maxP) throw invalid(path, 'more required properties than maxProperties');
      let room = maxP - req.size;
      const kept: Schema = {};
      for (const [k, v] of Object.entries(props)) {
        if (req.has(k)) kept[k] = v;
        else if (room > 0) {
          kept[k] = v;
          room--;
        }
      }
      props = kept;
      if (s.patternProperties !== undefined) throw unsupported(path, 'maxProperties together with patternProperties');
      extraKeys = false;
    }
    // patternProperties: a key matching a pattern takes that pattern's schema too.
    const pp = s.patternProperties ?? {};
    if (!pp || typeof pp !== 'object' || Array.isArray(pp)) throw invalid(path, 'patternProperties must be an object');
    const patterns = Object.entries(pp as Schema).map(([p, sub]) => {
      let re: RegExp;
      try {
        re = new RegExp(p, 'u');
      } catch {
        throw invalid(path, `patternProperties: ${JSON.stringify(p)} is not a regular expression`);
      }
      return { p, re, sub };
    });
    const keys = Object.keys(props);
    for (const r of required as string[]) {
      if (!(r in props)) {
        if (extra === false) throw invalid(path, `required property "${r}" is not allowed by additionalProperties`);
        keys.push(r);
      }
    }
    // The generated pattern keys must not spell a declared key (its value would then need
    // both schemas); nothing cheap excludes a word from a regex's language, so refuse.
    const clash = keys.find((k) => patterns.some((x) => x.re.test(k)));
    if (clash !== undefined) throw unsupported(path, `patternProperties matching the declared or required property "${clash}"`);
    const ws = this.base('ws');
    this.base('json-char');
    const kv = keys.map((k) => {
      // A required key that is not declared takes additionalProperties' schema.
      const v = k in props ? this.visit(props[k], `${path}/properties/${k}`, `${hint}-${k}`)
        : extra === true ? this.base('json-value') : this.visit(extra, `${path}/additionalProperties`, `${hint}-${k}`);
      return `${lit(JSON.stringify(k))} ${ws} ":" ${ws} ${v}`;
    });
    const req = keys.map((k) => (required as string[]).includes(k));
    let extraKv: string | null = null;
    if (patterns.length > 0) {
      // Keys of the patterns' languages, each value valid against every pattern's schema (a
      // key may match several). A key that matches no pattern would fall to
      // additionalProperties: that language is not generated (outputs only narrow).
      const subs = [...new Map(patterns.map((x) => [JSON.stringify(x.sub), x.sub])).values()];
      const value = subs.length === 1 ? this.visit(subs[0], `${path}/patternProperties`, `${hint}-pat`) : this.visit({ allOf: subs }, `${path}/patternProperties`, `${hint}-pat`);
      const body = patterns.map((x) => regexToGbnf(x.p, `${path}/patternProperties`)).join(' | ');
      extraKv = `"\\"" ( ${body} ) "\\"" ${ws} ":" ${ws} ${value}`;
    } else if (extra !== false && extraKeys) {
      const value = extra === true ? this.base('json-value') : this.visit(extra, `${path}/additionalProperties`, `${hint}-extra`);
      extraKv = `${this.keyNotIn(keys, hint)} ${ws} ":" ${ws} ${value}`;
    }
    // A_i: nothing written yet; B_i: something written (a comma comes first).
    const n = keys.length;
    const A: string[] = [];
    const B: string[] = [];
    for (let i = 0; i <= n; i++) {
      A.push(this.name(`${hint}-a${i}`));
      B.push(this.name(`${hint}-b${i}`));
    }
    for (let i = 0; i < n; i++) {
      const kvi = this.rule(`${hint}-kv`, kv[i]!);
      this.rules.set(A[i]!, `${kvi} ${B[i + 1]}` + (req[i] ? '' : ` | ${A[i + 1]}`));
      this.rules.set(B[i]!, `"," ${ws} ${kvi} ${B[i + 1]}` + (req[i] ? '' : ` | ${B[i + 1]}`));
    }
    if (extraKv) {
      const e = this.rule(`${hint}-extra-kv`, extraKv);
      this.rules.set(A[n]!, `| ${e} ( "," ${ws} ${e} )*`);
      this.rules.set(B[n]!, `( "," ${ws} ${e} )*`);
    } else {
      this.rules.set(A[n]!, '');
      this.rules.set(B[n]!, '');
    }
    return this.rule(hint, `"{" ${ws} ${A[0]} "}" ${ws}`);
  }

  /** A JSON string key that is none of `keys`: raw characters until it differs from each of them. */
  private keyNotIn(keys: string[], hint: string): string {
    const rest = this.rule(`${hint}-rest`, `json-char* "\\""`);
    type T = { end: boolean; kids: Map<string, T> };
    const root: T = { end: false, kids: new Map() };
    for (const k of keys) {
      let node = root;
      for (const ch of k) {
        if (!node.kids.has(ch)) node.kids.set(ch, { end: false, kids: new Map() });
        node = node.kids.get(ch)!;
      }
      node.end = true;
    }
    const build = (node: T): string => {
      const name = this.rule(`${hint}-key`, '');
      const alts: string[] = [];
      if (!node.end) alts.push('"\\""');
      const banned = [0x22, 0x5c];
      for (const [ch, kid] of node.kids) {
        const c = ch.codePointAt(0)!;
        banned.push(c);
        if (c < 0x20 || c === 0x22 || c === 0x5c) continue; // such keys are written escaped: any escape diverges
        alts.push(`${lit(ch)} ${build(kid)}`);
      }
      const cls = banned.map((c) => cpEsc(c)).join('');
      alts.push(`[^${cls}\\x00-\\x1f] ${rest}`);
      // No escape before the key differs from every declared one: "\u006eame" would be "name".
      this.rules.set(name, alts.join(' | '));
      return name;
    };
    return `"\\"" ${build(root)}`;
  }

  private array(s: Schema, path: string, hint: string): string {
    const minI = s.minItems === undefined ? 0 : nonNegInt(s.minItems, path, 'minItems');
    const maxI = s.maxItems === undefined ? Infinity : nonNegInt(s.maxItems, path, 'maxItems');
    if (s.uniqueItems !== undefined && typeof s.uniqueItems !== 'boolean') throw invalid(path, 'uniqueItems must be a boolean');
    // uniqueItems: false constrains nothing, nor does true on arrays of at most one item.
    if (s.uniqueItems === true && maxI > 1) throw unsupported(path, 'keyword "uniqueItems" (true, on arrays of more than one item)');
    if (maxI < minI) throw invalid(path, 'maxItems is below minItems');
    if (minI > 1000 || (maxI !== Infinity && maxI > 1000)) throw unsupported(path, 'minItems/maxItems above 1000');
    let prefix = (s.prefixItems ?? []) as unknown[];
    if (!Array.isArray(prefix)) throw invalid(path, 'prefixItems must be an array');
    let items = s.items;
    if (Array.isArray(items)) {
      // Drafts 4-2019: an items array is a tuple, additionalItems the schema of the rest.
      if (s.prefixItems !== undefined) throw invalid(path, 'items as an array beside prefixItems');
      prefix = items;
      items = s.additionalItems === undefined ? true : s.additionalItems;
    }
    // additionalItems beside items that is a schema (or absent) has no effect.
    const ws = this.base('ws');
    const pre = prefix.map((p, i) => this.visit(p, `${path}/prefixItems/${i}`, `${hint}-p${i}`));
    const item = items === false ? null : items === undefined || items === true ? this.base('json-value') : this.visit(items, `${path}/items`, `${hint}-item`);
    const k = pre.length;
    const maxCount = item === null ? Math.min(maxI, k) : maxI;
    if (maxCount < minI) throw invalid(path, 'minItems exceeds the items allowed');
    if (maxCount === 0) return this.rule(hint, `"[" ${ws} "]" ${ws}`);
    // tail(j): after j items.
    const tail = (j: number): string => {
      if (j >= maxCount) return '';
      if (j >= k) {
        const lo = Math.max(0, minI - j);
        const hi = maxCount === Infinity ? '' : String(maxCount - j);
        return `( "," ${ws} ${item} ){${lo},${hi}}`;
      }
      const r = this.rule(`${hint}-t${j}`, '');
      this.rules.set(r, `"," ${ws} ${pre[j]} ${tail(j + 1)}` + (j >= minI ? ' |' : ''));
      return r;
    };
    const first = k > 0 ? pre[0]! : item!;
    const body = `${first} ${tail(1)}`;
    return this.rule(hint, `"[" ${ws} ${minI === 0 ? `( ${body} )?` : body} "]" ${ws}`);
  }
}

/** The base URI of a document without an identifier: references are resolved against it. */
const DEFAULT_BASE = 'https://schema.invalid/root.json';
function safeUrl(ref: string, base: string): URL | null {
  try {
    return new URL(ref, base);
  } catch {
    return null;
  }
}
/** How errors name a place reached through a reference: as a pointer in this document when it is one. */
function refPath(key: string): string {
  return key.startsWith(DEFAULT_BASE) ? key.slice(DEFAULT_BASE.length) : key;
}

/** JSON text with object keys sorted: equal for values JSON Schema calls equal (1 and 1.0 included). */
function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Schema)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function nonNegInt(v: unknown, path: string, k: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalid(path, `${k} must be a non-negative integer`);
  return v;
}
const maxB = (a: bigint | null, b: bigint) => (a === null || b > a ? b : a);
const minB = (a: bigint | null, b: bigint) => (a === null || b < a ? b : a);

function typeMatches(v: unknown, type: unknown): boolean {
  if (type === undefined) return true;
  const types = Array.isArray(type) ? type : [type];
  return types.some((t) => {
    switch (t) {
      case 'null': return v === null;
      case 'boolean': return typeof v === 'boolean';
      case 'string': return typeof v === 'string';
      case 'number': return typeof v === 'number';
      case 'integer': return typeof v === 'number' && Number.isInteger(v);
      case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v);
      case 'array': return Array.isArray(v);
      default: return false;
    }
  });
}

function mergeSchemas(a: unknown, b: unknown, path: string): Schema {
  if (a === true || a === undefined) return (b === true ? {} : b) as Schema;
  if (b === true) return a as Schema;
  if (!a || !b || typeof a !== 'object' || typeof b !== 'object') throw unsupported(path, 'allOf of a non-object schema');
  // additionalProperties only sees the properties of its own schema: merging would loosen it.
  for (const [x, y] of [[a, b], [b, a]] as Array<[Schema, Schema]>) {
    if (x.additionalProperties === undefined || x.additionalProperties === true) continue;
    const own = new Set(Object.keys((x.properties ?? {}) as object));
    const other = [...Object.keys((y.properties ?? {}) as object), ...((y.required ?? []) as string[])];
    const foreign = other.find((k) => !own.has(k));
    if (foreign !== undefined) {
      throw unsupported(path, `allOf where additionalProperties of one part would apply to property "${foreign}" of another`);
    }
  }
  const out: Schema = { ...(a as Schema) };
  for (const [k, v] of Object.entries(b as Schema)) {
    if (!(k in out) || ANNOTATIONS.has(k)) {
      if (!ANNOTATIONS.has(k) || !(k in out)) out[k] = v;
      continue;
    }
    const cur = out[k];
    if (JSON.stringify(cur) === JSON.stringify(v)) continue;
    switch (k) {
      case 'properties': {
        const p: Schema = { ...(cur as Schema) };
        for (const [pk, pv] of Object.entries(v as Schema)) p[pk] = pk in p ? mergeSchemas(p[pk], pv, `${path}/properties/${pk}`) : pv;
        out[k] = p;
        break;
      }
      case 'required': out[k] = [...new Set([...(cur as string[]), ...(v as string[])])]; break;
      case 'enum': {
        if (!Array.isArray(cur) || !Array.isArray(v)) throw invalid(path, 'enum must be an array');
        const other = new Set(v.map((x) => canonicalJson(x)));
        const both = cur.filter((x) => other.has(canonicalJson(x)));
        if (both.length === 0) throw invalid(path, 'allOf branches have no enum value in common');
        out[k] = both;
        break;
      }
      case 'exclusiveMinimum': case 'exclusiveMaximum':
        if (typeof cur !== 'number' || typeof v !== 'number') throw unsupported(path, `allOf with different draft-4 values for "${k}"`);
        out[k] = k === 'exclusiveMinimum' ? Math.max(cur, v) : Math.min(cur, v);
        break;
      case 'minimum': case 'minLength': case 'minItems': out[k] = Math.max(cur as number, v as number); break;
      case 'maximum': case 'maxLength': case 'maxItems': out[k] = Math.min(cur as number, v as number); break;
      case 'type': {
        const ta = Array.isArray(cur) ? cur : [cur];
        const tb = Array.isArray(v) ? v : [v];
        const both = ta.filter((t) => tb.includes(t) || (t === 'integer' && tb.includes('number')));
        for (const t of tb) if (t === 'integer' && ta.includes('number') && !both.includes('integer')) both.push('integer');
        if (both.length === 0) throw invalid(path, 'allOf branches have no type in common');
        out[k] = both.length === 1 ? both[0] : both;
        break;
      }
      default:
        throw unsupported(path, `allOf with different values for "${k}"`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Integer ranges

function digitsRange(lo: string, hi: string): string {
  // lo and hi have the same number of digits; the alternatives for [lo, hi].
  if (lo.length === 0) return '""';
  if (lo === hi) return lit(lo);
  const n = lo.length;
  let p = 0;
  while (p < n && lo[p] === hi[p]) p++;
  const prefix = lo.slice(0, p);
  const a = Number(lo[p]);
  const b = Number(hi[p]);
  const restN = n - p - 1;
  const alts: string[] = [];
  const any = (k: number) => (k === 0 ? '' : k === 1 ? ' [0-9]' : ` [0-9]{${k}}`);
  const loRest = lo.slice(p + 1);
  const hiRest = hi.slice(p + 1);
  const loFull = /^0*$/.test(loRest);
  const hiFull = /^9*$/.test(hiRest);
  let from = a;
  let to = b;
  if (!loFull) {
    alts.push(`${lit(String(a))} ( ${digitsRange(loRest, '9'.repeat(restN))} )`);
    from = a + 1;
  }
  if (!hiFull) {
    alts.push(`${lit(String(b))} ( ${digitsRange('0'.repeat(restN), hiRest)} )`);
    to = b - 1;
  }
  if (from <= to) alts.push(`[${from}-${to}]${any(restN)}`);
  const body = alts.join(' | ');
  return prefix ? `${lit(prefix)} ( ${body} )` : body;
}

/** Non-negative integers in [lo, hi] (hi null = unbounded, up to 16 more digits), no leading zeros. */
function natRange(lo: bigint, hi: bigint | null): string {
  const alts: string[] = [];
  const lenLo = lo.toString().length;
  const lenHi = hi === null ? Math.max(lenLo, 16) : hi.toString().length;
  for (let len = lenLo; len <= lenHi; len++) {
    const minOfLen = len === 1 ? 0n : 10n ** BigInt(len - 1);
    const maxOfLen = 10n ** BigInt(len) - 1n;
    const a = lo > minOfLen ? lo : minOfLen;
    const b = hi !== null && hi < maxOfLen ? hi : maxOfLen;
    if (a > b) continue;
    alts.push(digitsRange(a.toString(), b.toString()));
  }
  return alts.map((x) => `( ${x} )`).join(' | ');
}

/** JSON integers in [lo, hi] (either side may be unbounded). */
export function intRange(lo: bigint | null, hi: bigint | null): string {
  const alts: string[] = [];
  if (hi === null || hi >= 0n) alts.push(natRange(lo === null || lo < 0n ? 0n : lo, hi));
  if (lo === null || lo < 0n) {
    const a = hi === null || hi >= 0n ? 1n : -hi;
    const b = lo === null ? null : -lo;
    alts.push(`"-" ( ${natRange(a, b)} )`);
  }
  return alts.join(' | ');
}

// ---------------------------------------------------------------------------------------
// Regex subset -> GBNF (the content of a JSON string)

/**
 * Translates an ECMAScript regex (the subset: literals, escapes, classes, `.`, \d \w \s and
 * their negations, groups, non-capturing groups, alternation, * + ? {m} {m,} {m,n}, ^ and $
 * at the ends) to a GBNF expression over the characters of a JSON string. Without ^ or $
 * the match may be surrounded by any text (the regex is unanchored, as ajv tests it).
 * Characters are generated raw; `"` and `\` as their JSON escapes; control characters never.
 */
export function regexToGbnf(re: string, path: string, len?: { min: number; max: number }): string {
  let pos = 0;
  const fail = (what: string) => unsupported(path, `pattern ${JSON.stringify(re)}: ${what}`);
  const D = [0x30, 0x39];
  const W = [0x30, 0x39, 0x41, 0x5a, 0x5f, 0x5f, 0x61, 0x7a];
  const S = [0x20, 0x20, 0x09, 0x0d, 0xa0, 0xa0, 0x1680, 0x1680, 0x2000, 0x200a, 0x2028, 0x2029, 0x202f, 0x202f, 0x205f, 0x205f, 0x3000, 0x3000, 0xfeff, 0xfeff];
  const complement = (r: number[]): number[] => {
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < r.length; i += 2) pairs.push([r[i]!, r[i + 1]!]);
    pairs.sort((x, y) => x[0] - y[0]);
    const out: number[] = [];
    let next = 0;
    for (const [a, b] of pairs) {
      if (a > next) out.push(next, a - 1);
      next = Math.max(next, b + 1);
    }
    if (next <= 0x10ffff) out.push(next, 0x10ffff);
    return out;
  };
  /** A class (codepoint ranges) as a GBNF expression for JSON string content. */
  const classExpr = (r: number[]): string => {
    const has = (c: number) => {
      for (let i = 0; i < r.length; i += 2) if (c >= r[i]! && c <= r[i + 1]!) return true;
      return false;
    };
    const alts: string[] = [];
    {
      // Intersect with the JSON raw characters by subtracting through a negated class.
      const allowedRanges: number[] = [];
      for (let i = 0; i < r.length; i += 2) {
        let a = r[i]!;
        const b = r[i + 1]!;
        if (a < 0x20) a = 0x20;
        if (a > b) continue;
        // split out 0x22 and 0x5c
        let cur = a;
        for (const x of [0x22, 0x5c]) {
          if (x >= cur && x <= b) {
            if (x - 1 >= cur) allowedRanges.push(cur, x - 1);
            cur = x + 1;
          }
        }
        if (cur <= b) allowedRanges.push(cur, b);
      }
      if (allowedRanges.length) {
        let cls = '';
        for (let i = 0; i < allowedRanges.length; i += 2) {
          const a = allowedRanges[i]!;
          const b = allowedRanges[i + 1]!;
          cls += a === b ? cpEsc(a) : `${cpEsc(a)}-${cpEsc(b)}`;
        }
        alts.push(`[${cls}]`);
      }
    }
    if (has(0x22)) alts.push('"\\\\\\""');
    if (has(0x5c)) alts.push('"\\\\\\\\"');
    if (alts.length === 0) throw fail('a character class that no JSON string character can match');
    return alts.length === 1 ? alts[0]! : `( ${alts.join(' | ')} )`;
  };
  const single = (c: number): number[] => [c, c];
  const chars = (r: number[]): Piece => {
    const e = classExpr(r);
    return { e, nullable: false, star: null, min: 1, max: 1, single: e };
  };

  const escapeRanges = (inClass: boolean): number[] => {
    const e = re[pos++];
    if (e === undefined) throw fail('trailing backslash');
    switch (e) {
      case 'd': return D;
      case 'D': return complement(D);
      case 'w': return W;
      case 'W': return complement(W);
      case 's': return S;
      case 'S': return complement(S);
      case 'n': return single(10);
      case 'r': return single(13);
      case 't': return single(9);
      case 'f': return single(12);
      case 'v': return single(11);
      case '0': return single(0);
      case 'x': {
        const h = re.slice(pos, pos + 2);
        if (!/^[0-9a-fA-F]{2}$/.test(h)) throw fail('bad \\x escape');
        pos += 2;
        return single(parseInt(h, 16));
      }
      case 'u': {
        let h: string;
        if (re[pos] === '{') {
          const end = re.indexOf('}', pos);
          h = re.slice(pos + 1, end);
          pos = end + 1;
        } else {
          h = re.slice(pos, pos + 4);
          pos += 4;
        }
        if (!/^[0-9a-fA-F]{1,6}$/.test(h)) throw fail('bad \\u escape');
        return single(parseInt(h, 16));
      }
      case 'b': if (inClass) return single(8); throw fail('\\b (word boundary)');
      default:
        if (/[1-9]/.test(e)) throw fail('backreferences');
        if (/[a-zA-Z]/.test(e)) throw fail(`escape \\${e}`);
        return single(e.codePointAt(0)!);
    }
  };

  /**
   * A parsed piece: its expression, whether it matches the empty string, and (when it does)
   * `star`: a non-nullable expression P with (piece)* = (P)*, or null when (piece)* is only
   * the empty string. A repetition of a nullable piece is generated as (P)*: `( x* )*` as is
   * would be a left-recursive rule.
   */
  type Piece = {
    e: string;
    nullable: boolean;
    star: string | null;
    /** Fewest and most characters it matches. */
    min: number;
    max: number;
    /** One character (a class). */
    single?: string;
    /** A repetition of one character class. */
    rep?: { cls: string; m: number; n: number };
    /** The items of a sequence. */
    items?: Piece[];
  };
  const starOf = (p: Piece): string | null => (p.nullable ? p.star : p.e);
  const anyOf = (xs: Array<string | null>): string | null => {
    const ys = xs.filter((x): x is string => x !== null);
    return ys.length === 0 ? null : ys.length === 1 ? ys[0]! : `( ${ys.join(' | ')} )`;
  };
  const parseAlt = (): Piece => {
    const alts = [parseSeq()];
    while (re[pos] === '|') {
      pos++;
      alts.push(parseSeq());
    }
    if (alts.length === 1) return alts[0]!;
    return {
      e: `( ${alts.map((a) => a.e).join(' | ')} )`, nullable: alts.some((a) => a.nullable), star: anyOf(alts.map(starOf)),
      min: Math.min(...alts.map((a) => a.min)), max: Math.max(...alts.map((a) => a.max)),
    };
  };
  const parseSeq = (): Piece => {
    const items: Piece[] = [];
    while (pos < re.length && re[pos] !== '|' && re[pos] !== ')') {
      let atom: Piece;
      const c = re[pos]!;
      if (c === '^' || c === '$') throw fail('^ or $ other than at the ends');
      if (c === '(') {
        pos++;
        if (re[pos] === '?') {
          if (re[pos + 1] === ':') pos += 2;
          else if (re[pos + 1] === '<' && re[pos + 2] !== '=' && re[pos + 2] !== '!') {
            const end = re.indexOf('>', pos);
            pos = end + 1;
          } else throw fail('lookaround assertions');
        }
        const inner = parseAlt();
        atom = { ...inner, e: `( ${inner.e} )`, items: undefined };
        if (re[pos] !== ')') throw fail("unbalanced '('");
        pos++;
      } else if (c === '[') {
        pos++;
        let neg = false;
        if (re[pos] === '^') {
          neg = true;
          pos++;
        }
        const r: number[] = [];
        let first = true;
        while (re[pos] !== ']' || first) {
          first = false;
          if (pos >= re.length) throw fail("unterminated '['");
          let lo: number[];
          if (re[pos] === '\\') {
            pos++;
            lo = escapeRanges(true);
          } else {
            const cp = re.codePointAt(pos)!;
            pos += cp > 0xffff ? 2 : 1;
            lo = single(cp);
          }
          if (re[pos] === '-' && re[pos + 1] !== ']' && lo.length === 2 && lo[0] === lo[1]) {
            pos++;
            let hi: number[];
            if (re[pos] === '\\') {
              pos++;
              hi = escapeRanges(true);
            } else {
              const cp = re.codePointAt(pos)!;
              pos += cp > 0xffff ? 2 : 1;
              hi = single(cp);
            }
            if (hi.length !== 2 || hi[0] !== hi[1] || hi[0]! < lo[0]!) throw fail('bad class range');
            r.push(lo[0]!, hi[0]!);
          } else r.push(...lo);
        }
        pos++;
        atom = chars(neg ? complement(r) : r);
      } else if (c === '.') {
        pos++;
        atom = chars(complement([10, 10, 13, 13, 0x2028, 0x2029]));
      } else if (c === '\\') {
        pos++;
        atom = chars(escapeRanges(false));
      } else if ('*+?{'.includes(c)) {
        if (c === '{' && !/^\{\d+(,\d*)?\}/.test(re.slice(pos))) {
          pos++;
          atom = chars(single(0x7b));
        } else throw fail('a quantifier with nothing before it');
      } else {
        const cp = re.codePointAt(pos)!;
        pos += cp > 0xffff ? 2 : 1;
        atom = chars(single(cp));
      }
      // Quantifiers.
      const q = /^(\*|\+|\?|\{(\d+)(,(\d*))?\})\??/.exec(re.slice(pos));
      if (q) {
        pos += q[0].length;
        const star = starOf(atom);
        const base = atom;
        const closure: Piece = { e: star === null ? '""' : `( ${star} )*`, nullable: true, star, min: 0, max: 0 };
        if (q[1] === '*') atom = closure;
        else if (q[1] === '+') atom = atom.nullable ? closure : { e: `( ${atom.e} )+`, nullable: false, star: null, min: 0, max: 0 };
        else if (q[1] === '?') atom = { e: `( ${atom.e} )?`, nullable: true, star, min: 0, max: 0 };
        else {
          const m = Number(q[2]);
          const n = q[3] ? (q[4] ? Number(q[4]) : Infinity) : m;
          if (m > 1000 || (n !== Infinity && n > 1000)) throw fail('repetition counts above 1000');
          if (n < m) throw fail('a repetition {m,n} with n < m');
          if (n === Infinity && atom.nullable) atom = closure; // x{m,} with x nullable is x*
          else atom = { e: n === 0 ? '""' : `( ${atom.e} ){${m},${n === Infinity ? '' : n}}`, nullable: m === 0 || atom.nullable, star: n === 0 ? null : star, min: 0, max: 0 };
        }
        // Lengths (the expressions above leave them to this).
        const [m, n] = q[1] === '*' ? [0, Infinity] : q[1] === '+' ? [1, Infinity] : q[1] === '?' ? [0, 1]
          : [Number(q[2]), q[3] ? (q[4] ? Number(q[4]) : Infinity) : Number(q[2])];
        atom = {
          ...atom, single: undefined, items: undefined, min: m * base.min, max: n === 0 || base.max === 0 ? 0 : n * base.max,
          rep: base.single !== undefined ? { cls: base.single, m, n } : undefined,
        };
      }
      items.push(atom);
    }
    if (items.length === 0) return { e: '""', nullable: true, star: null, min: 0, max: 0 };
    const lens = { min: items.reduce((a, x) => a + x.min, 0), max: items.reduce((a, x) => a + x.max, 0), items };
    const e = items.map((x) => x.e).join(' ');
    // x1 x2 ... all nullable: (x1 x2 ...)* = (x1 | x2 | ...)*.
    if (items.length === 1) return items[0]!;
    if (items.every((x) => x.nullable)) return { e, nullable: true, star: anyOf(items.map((x) => x.star)), ...lens };
    return { e, nullable: false, star: null, ...lens };
  };

  let anchoredStart = false;
  let anchoredEnd = false;
  let src = re;
  if (src.startsWith('^')) {
    anchoredStart = true;
    src = src.slice(1);
  }
  if (src.endsWith('$') && !src.endsWith('\\$')) {
    anchoredEnd = true;
    src = src.slice(0, -1);
  }
  // Parse on the stripped text.
  const whole = re;
  re = src;
  pos = 0;
  let top: Piece;
  try {
    top = parseAlt();
    if (pos !== re.length) throw fail("unbalanced ')'");
  } finally {
    re = whole;
  }
  if (!len) return `${anchoredStart ? '' : 'json-char* '}( ${top.e} )${anchoredEnd ? '' : ' json-char*'}`;
  // With minLength/maxLength: exact when the lengths are implied, or when one part alone has
  // a variable length and repeats one character class (its count is then bounded).
  const any: Piece = { e: 'json-lchar*', nullable: true, star: 'json-lchar', min: 0, max: Infinity, rep: { cls: 'json-lchar', m: 0, n: Infinity } };
  const seq = [...(anchoredStart ? [] : [any]), ...(top.items ?? [top]), ...(anchoredEnd ? [] : [any])];
  const lo = seq.reduce((a, x) => a + x.min, 0);
  const hi = seq.reduce((a, x) => a + x.max, 0);
  if (lo >= len.min && hi <= len.max) return seq.map((x) => x.e).join(' ');
  const variable = seq.filter((x) => x.min !== x.max);
  if (variable.length === 0 || hi < len.min || lo > len.max) throw invalid(path, `no string matching pattern ${JSON.stringify(re)} has a length within minLength/maxLength`);
  const v = variable[0]!;
  if (variable.length > 1 || !v.rep) {
    throw unsupported(path, `pattern ${JSON.stringify(re)} together with minLength/maxLength (more than one part of variable length, or a part that repeats more than one character)`);
  }
  const fixed = lo - v.min;
  const m = Math.max(v.rep.m, len.min - fixed);
  const n = Math.min(v.rep.n, len.max - fixed);
  if (n !== Infinity && n > MAX_REPETITION) throw unsupported(path, `string lengths above ${MAX_REPETITION}`);
  return seq.map((x) => (x === v ? `( ${v.rep!.cls} ){${m},${n === Infinity ? '' : n}}` : x.e)).join(' ');
}
