/** Process entry of the CLI: runs the command, then exits so that backend threads do not keep it alive. */
import { main } from './index.js';

const code = await main();
process.exitCode = code;
setImmediate(() => process.exit(code));
