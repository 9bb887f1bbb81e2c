import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: { target: 'es2022', sourcemap: false },
  test: { environment: 'node', include: ['tests/unit/**/*.test.{ts,tsx}'] },
} as never);
