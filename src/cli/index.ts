/**
 * The one CLI entry: `npm run cli -- <command> ...` (or the `cvae` bin).
 * Each command lives in its own module under ./commands and exports `register(program)`.
 */
import { Command, CommanderError } from 'commander';
import { isUserError } from '../errors.js';
import { logger } from '../log.js';
import { commandModules } from './commands/index.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('cvae')
    .description('CLIP-conditioned VAE image bot: models, training, datasets, feedback')
    .showHelpAfterError()
    .exitOverride();
  for (const mod of commandModules) mod.register(program);
  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    if (isUserError(err)) {
      process.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    logger.error({ err }, 'command failed');
    process.stderr.write(`error: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}

