/**
 * One JSON Schema per input (STYLE.md practice 6): the HTTP layer hands these
 * to Fastify (Ajv compiles them for validation and @fastify/swagger prints
 * them in /openapi.json), and the CLI and the domain functions check values
 * with `checkSchema` below, so every edge refuses the same inputs.
 *
 * `checkSchema` implements only the subset of JSON Schema 2020-12 these
 * schemas use (type, properties, required, additionalProperties: false,
 * enum, const, min/maxLength, pattern, minimum/maximum, items, min/maxItems,
 * uniqueItems). A schema using anything else is a programming error and
 * throws when checked, so the two validators cannot silently disagree.
 */
import { KeyfleetError } from '../errors.ts';

export interface JsonSchema {
  readonly $id?: string;
  readonly title?: string;
  readonly description?: string;
  readonly type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  readonly properties?: Readonly<Record<string, JsonSchema>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: false;
  readonly enum?: readonly (string | number | boolean)[];
  readonly const?: string | number | boolean;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly pattern?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly items?: JsonSchema;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly uniqueItems?: boolean;
}

const supported = new Set([
  '$id', 'title', 'description', 'type', 'properties', 'required', 'additionalProperties', 'enum', 'const',
  'minLength', 'maxLength', 'pattern', 'minimum', 'maximum', 'items', 'minItems', 'maxItems', 'uniqueItems',
]);

const patternCache = new Map<string, RegExp>();

function regex(pattern: string): RegExp {
  let r = patternCache.get(pattern);
  if (!r) {
    // JSON Schema patterns are ECMA-262 regexes, unanchored (2020-12 §6.3.3); ours anchor themselves.
    r = new RegExp(pattern, 'u');
    patternCache.set(pattern, r);
  }
  return r;
}

function invalid(what: string, path: string, message: string): KeyfleetError {
  const where = path === '' ? what : `${what}: ${path}`;
  return new KeyfleetError('KF_USAGE', `${where} ${message}`, { detail: 'schema-violation' });
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/**
 * Checks `value` against `schema`; returns it typed as T when it conforms.
 * Throws KF_USAGE (detail 'schema-violation') naming the first offending
 * field. Messages quote field names, never values (values may be secrets).
 */
export function checkSchema<T>(schema: JsonSchema, value: unknown, what: string): T {
  check(schema, value, what, '');
  return value as T;
}

function check(s: JsonSchema, v: unknown, what: string, path: string): void {
  for (const k of Object.keys(s)) if (!supported.has(k)) throw new Error(`schema keyword "${k}" is not supported by checkSchema`);
  const t = typeOf(v);
  if (s.type !== undefined) {
    const ok = s.type === t || (s.type === 'number' && t === 'integer');
    if (!ok) throw invalid(what, path, `must be ${s.type === 'integer' ? 'an integer' : `of type ${s.type}`}`);
  }
  if (s.const !== undefined && v !== s.const) throw invalid(what, path, `must be ${JSON.stringify(s.const)}`);
  if (s.enum !== undefined && !s.enum.includes(v as string | number | boolean)) {
    throw invalid(what, path, `must be one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`);
  }
  if (typeof v === 'string') {
    // Lengths count code points, as JSON Schema does (2020-12 validation §6.3.1).
    const length = s.minLength !== undefined || s.maxLength !== undefined ? [...v].length : 0;
    if (s.minLength !== undefined && length < s.minLength) throw invalid(what, path, s.minLength === 1 ? 'must not be empty' : `must be at least ${s.minLength} characters`);
    if (s.maxLength !== undefined && length > s.maxLength) throw invalid(what, path, `must be at most ${s.maxLength} characters`);
    if (s.pattern !== undefined && !regex(s.pattern).test(v)) throw invalid(what, path, 'is not in the expected format');
  }
  if (typeof v === 'number') {
    if (s.minimum !== undefined && v < s.minimum) throw invalid(what, path, `must be at least ${s.minimum}`);
    if (s.maximum !== undefined && v > s.maximum) throw invalid(what, path, `must be at most ${s.maximum}`);
  }
  if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) throw invalid(what, path, `must have at least ${s.minItems} item(s)`);
    if (s.maxItems !== undefined && v.length > s.maxItems) throw invalid(what, path, `must have at most ${s.maxItems} items`);
    if (s.uniqueItems && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) throw invalid(what, path, 'must not repeat an item');
    if (s.items) for (let i = 0; i < v.length; i++) check(s.items, v[i], what, `${path}[${i}]`);
  }
  if (t === 'object') {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!Object.hasOwn(o, r)) throw invalid(what, join(path, r), 'is required');
    for (const [k, x] of Object.entries(o)) {
      const sub = s.properties?.[k];
      if (sub === undefined) {
        if (s.additionalProperties === false) throw invalid(what, join(path, k), 'is not a known field');
        continue;
      }
      check(sub, x, what, join(path, k));
    }
  }
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}
