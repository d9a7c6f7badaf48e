/**
 * JSON Merge Patch (RFC 7396), the body of PATCH on apps, profiles,
 * policies and derived-credential settings: members of the patch replace
 * the target's, `null` removes a member, objects merge recursively, and
 * anything else (arrays included) replaces as a whole (§2). The result is
 * validated again as a whole by the caller; this only merges.
 */

export type JsonDocument = { [key: string]: unknown };

function isObject(v: unknown): v is JsonDocument {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** RFC 7396 §2 MergePatch(target, patch), without modifying either. */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: JsonDocument = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
      continue;
    }
    const current = Object.hasOwn(result, key) ? result[key] : undefined;
    // defineProperty, not assignment: a "__proto__" member (JSON.parse makes it an own property) must stay data.
    Object.defineProperty(result, key, { value: applyMergePatch(current, value), enumerable: true, writable: true, configurable: true });
  }
  return result;
}
