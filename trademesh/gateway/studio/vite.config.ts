// Studio's build: one page, bundled into dist/ for the gateway to serve at /.
// `npm run dev` serves it with hot reload and sends every API call to a running gateway
// (STUDIO_GATEWAY, default http://127.0.0.1:8081), so the page stays same-origin as in production.
import { defineConfig } from "vite";

const gateway = process.env.STUDIO_GATEWAY ?? "http://127.0.0.1:8081";

export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 1024 },
  server: {
    proxy: {
      "/api": gateway,
      // gRPC-web calls: POST /<full.Service>/<Method>
      "^/(trademesh|grpc)\\.[^/]+/": gateway,
    },
  },
});
