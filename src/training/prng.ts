/**
 * Moved to src/util/prng.ts (serving code uses it too). This re-export only keeps the synthetic-scene code
 * (src/training/data/synth/), which is being rewritten elsewhere, building until it imports the new path.
 */
export * from '../util/prng.js';
