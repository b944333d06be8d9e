// Seeded PRNG for tests: the same mulberry32 the workloads use, so every random test is
// reproducible from its seed.
export { seededRandom as rng, randomInt as randInt } from "../../src/util/random.js";
