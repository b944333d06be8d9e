import { configDefaults, defineConfig } from "vitest/config";

// Tests of the kernels themselves run against the debug build (kernel assertions trap);
// everything above them (engine, CLI, demo …) against the release build users get.
const KERNEL_TESTS = [
  "test/dirty-bitmap.test.ts",
  "test/xbzrle*.test.ts",
  "test/rle.test.ts",
  "test/lz.test.ts",
  "test/pagehash.test.ts",
  "test/dedup-index.test.ts",
  "test/page-history.test.ts",
  "test/codec/decoder-fuzz.test.ts",
  "test/kernel/*.test.ts",
];

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ["default"],
    projects: [
      { extends: true, test: { name: "kernel", include: KERNEL_TESTS, env: { PAGEWIRE_KERNEL: "debug" } } },
      {
        extends: true,
        test: {
          name: "release",
          include: ["test/**/*.test.ts"],
          exclude: [...configDefaults.exclude, ...KERNEL_TESTS],
        },
      },
    ],
  },
});
