// Studio's unit tests (`npm test`, run by ./dev test's checks): the plain-data modules (money,
// the Risk page's capital samples), in Node, one worker for every file (their start is most of
// the run's time, and they share no state).
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: { include: ["src/**/*.test.ts"], environment: "node", isolate: false },
});
