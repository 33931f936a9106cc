/**
 * Builds the dashboard (src/ui) into dist/ui, which the control plane serves at /. Everything is bundled
 * (uPlot included): edge networks are often offline, so the page loads nothing from elsewhere.
 */
import { defineConfig } from 'vite';

export default defineConfig({
  root: 'src/ui',
  base: '/',
  publicDir: false,
  build: {
    outDir: '../../dist/ui',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    reportCompressedSize: false,
  },
});
