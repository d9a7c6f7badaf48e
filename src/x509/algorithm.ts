/**
 * AlgorithmIdentifier (RFC 5280 §4.1.1.2):
 *
 *   AlgorithmIdentifier ::= SEQUENCE {
 *     algorithm   OBJECT IDENTIFIER,
 *     parameters  ANY DEFINED BY algorithm OPTIONAL }
 */
import { type Tlv, SequenceReader, Tag, isNull, raw, readOid } from '../asn1/reader.ts';
import * as der from '../asn1/writer.ts';

export interface AlgorithmIdentifier {
  readonly algorithm: string;
  /** The parameters element as received, or undefined when absent. A NULL is kept (pitfall 8: absent and NULL both occur). */
  readonly parameters: Tlv | undefined;
  readonly der: Uint8Array;
}

export function decodeAlgorithmIdentifier(tlv: Tlv): AlgorithmIdentifier {
  const r = new SequenceReader(tlv, 'AlgorithmIdentifier');
  const algorithm = readOid(r.next(Tag.oid));
  const parameters = r.hasMore() ? r.next() : undefined;
  r.end();
  return { algorithm, parameters, der: raw(tlv) };
}

/** True when the parameters are absent or NULL. */
export function hasNoParameters(alg: AlgorithmIdentifier): boolean {
  return alg.parameters === undefined || isNull(alg.parameters);
}

export function encodeAlgorithmIdentifier(oid: string, parameters?: Uint8Array | null): Uint8Array {
  if (parameters === undefined) return der.sequence(der.oid(oid));
  return der.sequence(der.oid(oid), parameters === null ? der.nullValue() : parameters);
}
