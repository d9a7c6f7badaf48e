/**
 * SCIM filters (RFC 7644 §3.4.2.2), the subset identity providers use to
 * find a resource before creating it: `attribute eq "value"`. Attribute
 * names are case-insensitive; the value is a JSON string literal. Anything
 * else is refused with scimType invalidFilter rather than misread.
 */
import { KeyfleetError } from '../../../errors.ts';

export interface EqFilter {
  /** The attribute as the caller spelt it, lower-cased. */
  readonly attribute: string;
  readonly value: string;
}

const EQ = /^\s*([A-Za-z][A-Za-z0-9:._-]*)\s+eq\s+("(?:[^"\\]|\\.)*")\s*$/i;

export function parseEqFilter(filter: string, allowed: readonly string[]): EqFilter {
  const invalid = (why: string) => new KeyfleetError('KF_USAGE', `unsupported filter: ${why}`, { detail: 'invalidFilter' });
  const match = EQ.exec(filter);
  if (match === null) throw invalid(`only 'attribute eq "value"' on ${allowed.join(', ')} is supported`);
  const attribute = match[1]!.toLowerCase().replace(/^urn:ietf:params:scim:schemas:core:2\.0:(user|group):/, '');
  if (!allowed.map((a) => a.toLowerCase()).includes(attribute)) throw invalid(`filtering on "${match[1]}" is not supported (use ${allowed.join(', ')})`);
  let value: unknown;
  try {
    value = JSON.parse(match[2]!);
  } catch {
    throw invalid('the value is not a valid string literal');
  }
  return { attribute, value: value as string };
}
