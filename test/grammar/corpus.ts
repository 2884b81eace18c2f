/**
 * A hand-written corpus of real-world-style JSON schemas (shapes of well-known APIs and
 * of the kinds of schemas in JSONSchemaBench: GitHub, Kubernetes, Stripe, OpenAI tool
 * parameters, package manifests, ...). Written for these tests, not downloaded.
 */
export const SCHEMAS: Record<string, object> = {
  githubIssue: {
    type: 'object',
    properties: {
      title: { type: 'string', minLength: 1, maxLength: 80 },
      body: { type: 'string' },
      labels: { type: 'array', items: { type: 'string' }, maxItems: 5 },
      assignees: { type: 'array', items: { type: 'string', pattern: '^[a-zA-Z0-9-]{1,39}$' }, maxItems: 3 },
      milestone: { type: ['integer', 'null'], minimum: 1 },
      state: { enum: ['open', 'closed'] },
    },
    required: ['title'],
    additionalProperties: false,
  },
  weatherTool: {
    type: 'object',
    properties: {
      location: { type: 'string', description: 'City and country, e.g. Paris, France' },
      unit: { type: 'string', enum: ['celsius', 'fahrenheit'] },
      days: { type: 'integer', minimum: 1, maximum: 14 },
    },
    required: ['location', 'unit'],
    additionalProperties: false,
  },
  stripeCustomer: {
    type: 'object',
    properties: {
      id: { type: 'string', pattern: '^cus_[A-Za-z0-9]{14}$' },
      object: { const: 'customer' },
      email: { type: 'string', format: 'email' },
      balance: { type: 'integer' },
      created: { type: 'integer', minimum: 0 },
      currency: { type: ['string', 'null'], pattern: '^[a-z]{3}$' },
      delinquent: { type: 'boolean' },
      metadata: { type: 'object', additionalProperties: { type: 'string', maxLength: 50 } },
    },
    required: ['id', 'object', 'created'],
  },
  k8sContainer: {
    type: 'object',
    properties: {
      name: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' },
      image: { type: 'string' },
      ports: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            containerPort: { type: 'integer', minimum: 1, maximum: 65535 },
            protocol: { enum: ['TCP', 'UDP', 'SCTP'] },
          },
          required: ['containerPort'],
          additionalProperties: false,
        },
      },
      env: {
        type: 'array',
        items: { type: 'object', properties: { name: { type: 'string' }, value: { type: 'string' } }, required: ['name'] },
      },
      resources: {
        type: 'object',
        properties: {
          limits: { type: 'object', properties: { cpu: { type: 'string' }, memory: { type: 'string' } } },
        },
      },
    },
    required: ['name', 'image'],
    additionalProperties: false,
  },
  packageJson: {
    type: 'object',
    properties: {
      name: { type: 'string', pattern: '^(?:@[a-z0-9-~][a-z0-9-._~]*/)?[a-z0-9-~][a-z0-9-._~]*$' },
      version: { type: 'string', pattern: '^\\d+\\.\\d+\\.\\d+(-[0-9A-Za-z.-]+)?$' },
      private: { type: 'boolean' },
      scripts: { type: 'object', additionalProperties: { type: 'string' } },
      dependencies: { type: 'object', additionalProperties: { type: 'string' } },
      license: { type: 'string' },
    },
    required: ['name', 'version'],
  },
  person: {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'Person',
    type: 'object',
    properties: {
      firstName: { type: 'string' },
      lastName: { type: 'string' },
      age: { type: 'integer', minimum: 0, maximum: 150 },
      birthday: { type: 'string', format: 'date' },
      id: { type: 'string', format: 'uuid' },
    },
    required: ['firstName', 'lastName'],
    additionalProperties: false,
  },
  calendarEvent: {
    type: 'object',
    properties: {
      summary: { type: 'string' },
      start: { type: 'string', format: 'date-time' },
      end: { type: 'string', format: 'date-time' },
      attendees: { type: 'array', items: { type: 'string', format: 'email' }, maxItems: 4 },
      reminderMinutes: { type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 1441 },
      dailyStart: { type: 'string', format: 'time' },
    },
    required: ['summary', 'start', 'end'],
    additionalProperties: false,
  },
  linkedList: {
    $defs: {
      node: {
        type: 'object',
        properties: { value: { type: 'integer' }, next: { anyOf: [{ $ref: '#/$defs/node' }, { type: 'null' }] } },
        required: ['value', 'next'],
        additionalProperties: false,
      },
    },
    $ref: '#/$defs/node',
  },
  fileTree: {
    definitions: {
      entry: {
        type: 'object',
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 20 },
          kind: { enum: ['file', 'dir'] },
          children: { type: 'array', items: { $ref: '#/definitions/entry' }, maxItems: 3 },
        },
        required: ['name', 'kind'],
        additionalProperties: false,
      },
    },
    $ref: '#/definitions/entry',
  },
  geoJsonPoint: {
    type: 'object',
    properties: {
      type: { const: 'Point' },
      coordinates: { type: 'array', prefixItems: [{ type: 'number', minimum: -180, maximum: 180 }, { type: 'number', minimum: -90, maximum: 90 }], items: false, minItems: 2 },
    },
    required: ['type', 'coordinates'],
    additionalProperties: false,
  },
  shape: {
    oneOf: [
      { type: 'object', properties: { kind: { const: 'circle' }, radius: { type: 'number', minimum: 0 } }, required: ['kind', 'radius'], additionalProperties: false },
      { type: 'object', properties: { kind: { const: 'rect' }, w: { type: 'number', minimum: 0 }, h: { type: 'number', minimum: 0 } }, required: ['kind', 'w', 'h'], additionalProperties: false },
    ],
  },
  sentiment: {
    type: 'object',
    properties: {
      label: { enum: ['positive', 'negative', 'neutral'] },
      confidence: { type: 'number', minimum: 0, maximum: 1 },
      spans: { type: 'array', items: { type: 'array', prefixItems: [{ type: 'integer', minimum: 0 }, { type: 'integer', minimum: 0 }], items: false, minItems: 2 } },
    },
    required: ['label', 'confidence'],
    additionalProperties: false,
  },
  openApiInfo: {
    type: 'object',
    properties: {
      title: { type: 'string' },
      version: { type: 'string' },
      contact: { type: 'object', properties: { name: { type: 'string' }, url: { type: 'string' }, email: { type: 'string', format: 'email' } }, additionalProperties: false },
      license: { type: 'object', properties: { name: { type: 'string' }, identifier: { type: 'string' } }, required: ['name'], additionalProperties: false },
    },
    required: ['title', 'version'],
    additionalProperties: true,
  },
  sqlQuery: {
    type: 'object',
    properties: {
      table: { type: 'string', pattern: '^[a-z_][a-z0-9_]*$' },
      columns: { type: 'array', items: { type: 'string' }, minItems: 1 },
      where: { type: 'array', items: { type: 'object', properties: { column: { type: 'string' }, op: { enum: ['=', '!=', '<', '>', '<=', '>=', 'LIKE'] }, value: { type: ['string', 'number', 'boolean', 'null'] } }, required: ['column', 'op', 'value'], additionalProperties: false } },
      limit: { type: 'integer', minimum: 1, maximum: 1000 },
    },
    required: ['table', 'columns'],
    additionalProperties: false,
  },
  invoice: {
    type: 'object',
    properties: {
      number: { type: 'string', pattern: '^INV-[0-9]{6}$' },
      date: { type: 'string', format: 'date' },
      lines: {
        type: 'array',
        minItems: 1,
        maxItems: 5,
        items: {
          type: 'object',
          properties: { sku: { type: 'string' }, qty: { type: 'integer', minimum: 1, maximum: 999 }, price: { type: 'number', minimum: 0 } },
          required: ['sku', 'qty', 'price'],
          additionalProperties: false,
        },
      },
      total: { type: 'number', minimum: 0 },
      paid: { type: 'boolean' },
    },
    required: ['number', 'lines', 'total'],
    additionalProperties: false,
  },
  allOfMerge: {
    allOf: [
      { type: 'object', properties: { id: { type: 'integer', minimum: 1 } }, required: ['id'] },
      { type: 'object', properties: { name: { type: 'string', maxLength: 30 } }, required: ['name'] },
    ],
  },
  searchResults: {
    type: 'object',
    properties: {
      query: { type: 'string' },
      total: { type: 'integer', minimum: 0 },
      results: {
        type: 'array',
        maxItems: 3,
        items: { type: 'object', properties: { url: { type: 'string', pattern: '^https://[a-z0-9.-]+/[a-zA-Z0-9/_-]*$' }, title: { type: 'string' }, score: { type: 'number' } }, required: ['url', 'title'], additionalProperties: false },
      },
    },
    required: ['query', 'results'],
    additionalProperties: false,
  },
  tweet: {
    type: 'object',
    properties: {
      text: { type: 'string', maxLength: 280 },
      lang: { type: 'string', pattern: '^[a-z]{2}(-[A-Z]{2})?$' },
      hashtags: { type: 'array', items: { type: 'string', pattern: '^#\\w+$' }, maxItems: 4 },
      reply_to: { type: ['string', 'null'] },
    },
    required: ['text'],
    additionalProperties: false,
  },
  color: { type: 'string', pattern: '^#[0-9a-fA-F]{6}$' },
  stringList: { type: 'array', items: { type: 'string', enum: ['red', 'green', 'blue'] }, minItems: 1, maxItems: 3 },
  anyJson: {},
  nullableNumber: { type: ['number', 'null'], minimum: -10, maximum: 10 },
  dockerCompose: {
    type: 'object',
    properties: {
      version: { type: 'string' },
      services: {
        type: 'object',
        additionalProperties: {
          type: 'object',
          properties: {
            image: { type: 'string' },
            ports: { type: 'array', items: { type: 'string', pattern: '^\\d{1,5}:\\d{1,5}$' } },
            restart: { enum: ['no', 'always', 'on-failure', 'unless-stopped'] },
          },
          required: ['image'],
          additionalProperties: false,
        },
      },
    },
    required: ['services'],
    additionalProperties: false,
  },
  chatMessage: {
    type: 'object',
    properties: {
      role: { enum: ['system', 'user', 'assistant', 'tool'] },
      content: { type: 'string' },
      tool_calls: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            id: { type: 'string' },
            type: { const: 'function' },
            function: { type: 'object', properties: { name: { type: 'string' }, arguments: { type: 'string' } }, required: ['name', 'arguments'], additionalProperties: false },
          },
          required: ['id', 'type', 'function'],
          additionalProperties: false,
        },
      },
    },
    required: ['role'],
    additionalProperties: false,
  },
  // Annotations and vendor extensions of every kind (ignored: they do not change what validates).
  annotated: {
    id: 'http://jsonschema.net',
    $comment: 'generated',
    type: 'object',
    'x-kubernetes-group-version-kind': [{ group: '', kind: 'Pod', version: 'v1' }],
    self: { vendor: 'com.acme', name: 'event', format: 'jsonschema', version: '1-0-0' },
    properties: {
      name: { id: 'http://jsonschema.net/name', type: 'string', readonly: true, example: 'x', name: 'label', maxLength: 12 },
      port: { type: 'integer', _format: 'int32', minimum: 1, maximum: 65535, deprecated: true, 'x-order': 2 },
      tags: { type: 'array', items: { type: 'string', links: [{ rel: 'self', href: '{id}' }] }, _uniqueItems: true, maxItems: 3 },
      mode: { type: 'string', enum: ['a', 'b'], contentMediaType: 'text/plain', nullable: true },
    },
    required: ['name'],
    additionalProperties: false,
  },
  // Network formats (ajv-formats, full mode).
  endpoints: {
    type: 'object',
    properties: {
      homepage: { type: 'string', format: 'uri' },
      mirrors: { type: 'array', items: { type: 'string', format: 'uri' }, maxItems: 3 },
      host: { type: 'string', format: 'hostname' },
      v4: { type: 'string', format: 'ipv4' },
      v6: { type: 'string', format: 'ipv6' },
    },
    required: ['homepage', 'host', 'v4', 'v6'],
    additionalProperties: false,
  },
  // patternProperties: OpenAPI paths and extensions, Kubernetes-style label maps.
  openApiPaths: {
    type: 'object',
    properties: { openapi: { const: '3.0.0' }, info: { type: 'object', properties: { title: { type: 'string' } }, required: ['title'] } },
    patternProperties: {
      '^/': { type: 'object', properties: { get: { type: 'object', properties: { summary: { type: 'string', maxLength: 20 } } } }, additionalProperties: false },
      '^x-': {},
    },
    required: ['openapi'],
    additionalProperties: false,
  },
  labels: {
    type: 'object',
    properties: { metadata: { type: 'object', properties: { labels: { patternProperties: { '^[a-z0-9.-]{1,12}$': { type: 'string', maxLength: 8 } }, additionalProperties: false } } } },
    required: ['metadata'],
    additionalProperties: false,
  },
  overlapping: {
    type: 'object',
    properties: { count: { type: 'integer', minimum: 0, maximum: 9 } },
    patternProperties: { '^n': { type: 'integer', minimum: 0 }, 'x$': { type: 'integer', maximum: 50 }, '^z': { type: 'integer' } },
    required: ['count', 'total'],
    additionalProperties: { type: 'integer', minimum: 100, maximum: 200 },
  },
  // minProperties/maxProperties, dependentRequired, keywords beside $ref.
  counted: {
    type: 'object',
    $defs: { tags: { type: 'array', items: { type: 'string', maxLength: 4 } }, meta: { type: 'object', properties: { a: { type: 'integer' }, b: { type: 'integer' }, c: { type: 'integer' } } } },
    properties: {
      tags: { $ref: '#/$defs/tags', maxItems: 2, minItems: 1 },
      some: { $ref: '#/$defs/meta', minProperties: 2 },
      few: { $ref: '#/$defs/meta', maxProperties: 1, required: ['c'] },
      open: { type: 'object', maxProperties: 2, properties: { x: { type: 'boolean' } }, additionalProperties: { type: 'integer' } },
      pay: { type: 'object', properties: { card: { type: 'string' }, billing: { type: 'string' }, zip: { type: 'integer' } }, dependentRequired: { card: ['billing', 'zip'] } },
    },
    required: ['tags', 'some', 'few', 'open', 'pay'],
    additionalProperties: false,
  },
  // Patterns with lengths (identifiers, codes).
  patternLengths: {
    type: 'object',
    properties: {
      slug: { type: 'string', pattern: '^[a-z0-9-]+$', minLength: 3, maxLength: 12 },
      sku: { type: 'string', pattern: '^SKU-[0-9]*$', maxLength: 8 },
      code: { type: 'string', pattern: '^[A-Z]{2}$', maxLength: 10 },
    },
    required: ['slug', 'sku', 'code'],
    additionalProperties: false,
  },
  // Long string bounds (database column widths), repeated: one shared chain per bound.
  longStrings: {
    type: 'object',
    properties: {
      a: { type: 'string', maxLength: 32767 },
      b: { type: 'string', maxLength: 32767 },
      c: { type: 'string', minLength: 2, maxLength: 65535 },
      d: { type: 'array', items: { type: 'string', maxLength: 32767 }, maxItems: 2 },
    },
    required: ['a', 'c'],
    additionalProperties: false,
  },
  // Definitions whose names hold any character, reached through JSON pointer escapes.
  k8sDefinitions: {
    type: 'object',
    definitions: {
      'https://k8s.example/defs.json#/io.k8s/api~core/v1 Pod': { type: 'object', properties: { kind: { const: 'Pod' } }, required: ['kind'], additionalProperties: false },
      'io.k8s.Quantity%': { type: 'integer', minimum: 0, maximum: 99 },
    },
    properties: {
      pod: { $ref: '#/definitions/https:~1~1k8s.example~1defs.json%23~1io.k8s~1api~0core~1v1%20Pod' },
      size: { $ref: '#/definitions/io.k8s.Quantity%25' },
      other: { $ref: '#/properties/size' },
    },
    required: ['pod', 'size'],
    additionalProperties: false,
  },
  // References to schemas named by $id (absolute, relative, embedded with their own base) and $anchor.
  idRefs: {
    $id: 'https://example.com/schemas/order.json',
    type: 'object',
    $defs: {
      item: {
        $id: 'item.json',
        type: 'object',
        properties: { sku: { $ref: '#/$defs/sku' }, qty: { type: 'integer', minimum: 1, maximum: 9 } },
        required: ['sku', 'qty'],
        additionalProperties: false,
        $defs: { sku: { type: 'string', pattern: '^[A-Z]{3}[0-9]{2}$' } },
      },
      sku: { type: 'integer' },
      money: { $anchor: 'money', type: 'integer', minimum: 0, maximum: 1000 },
    },
    properties: {
      items: { type: 'array', items: { $ref: 'item.json' }, minItems: 1, maxItems: 2 },
      first: { $ref: 'https://example.com/schemas/item.json' },
      firstQty: { $ref: 'item.json#/properties/qty' },
      total: { $ref: '#money' },
      code: { $ref: '#/$defs/sku' },
    },
    required: ['items', 'total', 'code'],
    additionalProperties: false,
  },
  unicodeKeys: {
    type: 'object',
    properties: { 'prénom': { type: 'string' }, '名前': { type: 'string', pattern: '^[\\u3040-\\u30ff]+$' }, 'quote"key': { type: 'integer' } },
    required: ['prénom'],
  },
};

/**
 * Real-world-style schemas that use keywords the compiler refuses (each must fail with
 * ERR_SCHEMA_UNSUPPORTED naming it, never compile to something looser).
 */
export const UNSUPPORTED: Record<string, { schema: object; keyword: RegExp }> = {
  idsByPattern: {
    schema: { type: 'object', required: ['id1'], patternProperties: { '^id[0-9]$': { type: 'integer' } } },
    keyword: /patternProperties matching the declared or required property "id1"/,
  },
  tagsUnique: { schema: { type: 'array', items: { type: 'string' }, uniqueItems: true }, keyword: /uniqueItems/ },
  homepageIri: { schema: { type: 'object', properties: { homepage: { type: 'string', format: 'iri' } } }, keyword: /format "iri"/ },
  priceCents: { schema: { type: 'number', multipleOf: 0.01 }, keyword: /multipleOf/ },
  conditional: {
    schema: { type: 'object', properties: { country: { type: 'string' } }, if: { properties: { country: { const: 'US' } } }, then: { required: ['zip'] } },
    keyword: /keyword "if"/,
  },
  headers: { schema: { type: 'object', minProperties: 1, additionalProperties: { type: 'string' } }, keyword: /minProperties/ },
  identifiers: { schema: { type: 'object', propertyNames: { pattern: '^[a-z]+$' } }, keyword: /propertyNames/ },
  notEmpty: { schema: { type: 'string', not: { const: '' } }, keyword: /keyword "not"/ },
  decimalRange: { schema: { type: 'number', minimum: 0, exclusiveMaximum: 1 }, keyword: /exclusiveMinimum\/exclusiveMaximum on a number/ },
  wordBoundary: { schema: { type: 'string', pattern: '\\bfoo\\b' }, keyword: /\\b/ },
};
