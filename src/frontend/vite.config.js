import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// Dev server: 0.0.0.0:3000, /api proxied to the backend. In the compose stack BACKEND_URL is
// http://expungeservice:5000; natively the backend is on localhost:5000.
const backendUrl = process.env.BACKEND_URL || 'http://localhost:5000';

export default defineConfig({
  plugins: [react()],
  server: {
    host: '0.0.0.0',
    port: 3000,
    strictPort: true,
    proxy: {
      '/api': { target: backendUrl, changeOrigin: true },
    },
    // File watching through bind mounts that do not pass inotify events (e.g. some VMs).
    watch: process.env.VITE_USE_POLLING === 'true' ? { usePolling: true, interval: 300 } : undefined,
  },
  preview: {
    host: '0.0.0.0',
    port: 3000,
    strictPort: true,
  },
  build: {
    outDir: 'build',
    emptyOutDir: true,
  },
  test: {
    environment: 'jsdom',
    globals: false,
    setupFiles: ['./src/setupTests.js'],
    include: ['src/**/*.test.{js,jsx}'],
  },
});
