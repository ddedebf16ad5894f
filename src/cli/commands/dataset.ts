/**
 * `dataset`: the dataset command group (COCO ingestion, synthetic scenes, cache build and info).
 * Subcommands live in their own modules and are added here.
 */
import type { Command } from 'commander';
import { registerSynth } from './dataset-synth.js';

export function register(program: Command): void {
  const dataset = program.command('dataset').description('datasets: synthetic scenes, MS COCO subset, embedding cache');
  registerSynth(dataset);
}
