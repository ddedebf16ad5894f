/**
 * `npm run quality`: what a text-conditioned checkpoint draws for held-out prompts of the synthetic scene
 * grammar, read by the scene judge (models/scene-judge). The logic and the options live in
 * src/training/judge/quality-cli.ts (command line) and quality.ts (the check and its report):
 *
 *   npm run quality -- [--checkpoint models/demo] [--judge models/scene-judge] [--prompts 64] [--seeds 4]
 *                      [--prompt-seed 7] [--prompt "text" ...] [--synth-seed 1 --synth-count 4000]
 *                      [--clip-model ID_OR_DIR] [--engine auto|onnx|tfjs] [--json FILE]
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { qualityCli } from '../src/training/judge/quality-cli.js';

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const code = await qualityCli(process.argv.slice(2));
  // Backend and ONNX Runtime threads must not keep the process alive.
  process.exitCode = code;
  setImmediate(() => process.exit(code));
}
