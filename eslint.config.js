// ESLint: typescript-eslint's recommended rules, plus the import-boundary
// rule that keeps the layers of docs/architecture.md true.
import tseslint from 'typescript-eslint';

/** Which of our folders each layer may import (besides itself). */
const layers = {
  asn1: [],
  x509: ['asn1'],
  smime: ['asn1', 'x509'],
  pkcs12: ['asn1', 'x509', 'smime'],
  store: [],
  ca: ['asn1', 'x509', 'smime', 'store'],
  scep: ['asn1', 'x509', 'smime', 'ca', 'store'],
  directory: ['asn1', 'x509', 'smime', 'ca', 'store'],
  policy: ['asn1', 'x509', 'smime', 'ca', 'store', 'directory'],
  // The wire contract of the device and connector APIs, shared by both ends.
  protocol: ['asn1', 'x509', 'smime'],
  delivery: ['asn1', 'x509', 'smime', 'ca', 'store', 'directory', 'policy', 'scep', 'protocol'],
  connector: ['asn1', 'x509', 'smime', 'pkcs12', 'protocol'],
  device: ['asn1', 'x509', 'smime', 'pkcs12', 'scep', 'mail', 'protocol'],
  mail: ['asn1', 'x509', 'smime'],
  http: ['asn1', 'x509', 'smime', 'pkcs12', 'ca', 'scep', 'store', 'directory', 'policy', 'delivery', 'protocol'],
  cli: null, // the command wires everything together
};
const all = Object.keys(layers);

const boundaryConfigs = Object.entries(layers)
  .filter(([, allowed]) => allowed !== null)
  .map(([layer, allowed]) => {
    const forbidden = all.filter((l) => l !== layer && !allowed.includes(l));
    return {
      files: [`src/${layer}/**/*.ts`],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: [
              {
                regex: `^\\.\\./(\\.\\./)*(${forbidden.join('|')})/`,
                message: `src/${layer} may import only: ${allowed.join(', ') || 'nothing of ours'} (docs/architecture.md)`,
              },
            ],
          },
        ],
      },
    };
  });

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'tmp/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  ...boundaryConfigs,
);
