/** Synthetic bucolic scenes: scene grammar, renderer, captions, colour classifier and dataset writer. */
export * from './palette.js';
export * from './scene.js';
export * from './render.js';
export * from './captions.js';
export * from './write.js';
export { Rng, itemSeed } from './random.js';
