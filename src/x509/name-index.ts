/**
 * Lookup of certificates by name. `namesEqual` (RFC 5280 §7.1) compares two
 * names; finding the issuer among a trust store of hundreds of roots on
 * every verify needs an index instead. The key is deliberately coarser than
 * namesEqual (every whitespace removed, not just folded), so that names
 * equal under namesEqual always share a key; callers confirm a hit with
 * namesEqual.
 */
import type { Certificate } from './certificate.ts';
import { type Name, namesEqual } from './name.ts';

const keys = new WeakMap<Name, string>();

export function nameKey(name: Name): string {
  let key = keys.get(name);
  if (key === undefined) {
    key = name.rdns
      .map((rdn) =>
        rdn
          .map((a) => `${a.type}=${a.value.normalize('NFKC').replace(/\s+/g, '').toLowerCase()}`)
          .sort()
          .join('+'),
      )
      .join(',');
    keys.set(name, key);
  }
  return key;
}

/** Certificates indexed by subject name. */
export class SubjectIndex {
  private readonly bySubject = new Map<string, Certificate[]>();
  readonly size: number;

  constructor(certificates: readonly Certificate[]) {
    const seen = new Set<string>();
    for (const c of certificates) {
      if (seen.has(c.fingerprint256)) continue;
      seen.add(c.fingerprint256);
      const key = nameKey(c.subject);
      const list = this.bySubject.get(key);
      if (list) list.push(c);
      else this.bySubject.set(key, [c]);
    }
    this.size = certificates.length;
  }

  /** Certificates whose subject equals `name` (RFC 5280 §7.1). */
  find(name: Name): readonly Certificate[] {
    const list = this.bySubject.get(nameKey(name));
    if (!list) return [];
    return list.every((c) => namesEqual(c.subject, name)) ? list : list.filter((c) => namesEqual(c.subject, name));
  }
}
