/** The platform-neutral bot core: contract, errors, and the pieces createBotCore wires together. */
export * from './types.js';
export * from './errors.js';
export * from './deps.js';
export { createBotCore, type BotCoreDeps, type BotCoreHandle } from './core.js';
export { AdminPolicy } from './admin.js';
export { ImagineQueue, type GenerationQueue, type ImagineQueueOptions, type QueueJob, type QueueHooks } from './queue.js';
export { validatePrompt, cleanPrompt, validateCount, validateSeed, validateModelName, MAX_PROMPT_LENGTH } from './prompt.js';
export { TrainingRunner, type TrainingRunnerOptions } from './training-runner.js';
export { CheckpointSamplerProvider, type CheckpointSampler } from './sampler-provider.js';
export { perturbEmbedding, VARIATION_STRENGTH } from './variations.js';
export { openBotStore, type BotStore } from './store/index.js';
