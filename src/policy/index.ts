/**
 * The management service's domain logic (issue 4), free of storage and
 * HTTP: resources and their schemas, derived-credential settings, VPP app
 * sync, JSON merge patch, the S/MIME policy and its compiler, assignments
 * and effective state, certificate states, PFX import preparation.
 * Routes (src/http) and the CLI wire these to the store.
 */
export * from './refusal.ts';
export * from './json-schema.ts';
export * from './resources.ts';
export * from './derived-credential.ts';
export * from './vpp.ts';
export * from './merge-patch.ts';
export * from './smime-policy.ts';
export * from './compile.ts';
export * from './assignments.ts';
export * from './effective-state.ts';
export * from './certificate-state.ts';
export * from './pfx-import.ts';
