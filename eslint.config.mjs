// Lint rules for the Studio's TypeScript (labextension/).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

export default tseslint.config(
  {
    ignores: [
      'labextension/lib/**',
      'build/**',
      'node_modules/**',
      '.venv/**',
      'prophecy_jupyter/**',
      'examples/**',
      'benchmarks/**',
      'tests/**',
      'eslint.config.mjs'
    ]
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    files: ['labextension/**/*.{ts,tsx}'],
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { args: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      eqeqeq: 'error',
      'prefer-const': 'error',
      curly: ['error', 'all']
    }
  }
);
