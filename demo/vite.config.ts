// Vite config of the demo: `npm run demo` (dev server), `npm run demo:build` (static
// files in demo/dist), `vite preview --config demo/vite.config.ts` (serves demo/dist).
// Both servers send COOP/COEP so the page is cross-origin isolated: SharedArrayBuffer and
// shared WebAssembly memory work, and the guest runs in a Worker on the kernel's memory.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));
const repo = fileURLToPath(new URL("..", import.meta.url));

export const isolationHeaders = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

export default defineConfig({
  root,
  base: "./",
  clearScreen: false,
  // the kernel's .wasm files live in ../build (found through new URL(…, import.meta.url))
  server: { headers: isolationHeaders, host: "127.0.0.1", fs: { allow: [repo] } },
  preview: { headers: isolationHeaders, host: "127.0.0.1" },
  worker: { format: "es" },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", assetsInlineLimit: 0, chunkSizeWarningLimit: 2000 },
});
