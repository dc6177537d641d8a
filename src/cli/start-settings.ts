import { keepYoungGenerationSmall } from '../net/young-garbage.js'

/**
 * Process settings that have to be in place before the CLI loads its commands: bin/run.js and the installer's entry
 * import this module first. `bundle` and `push` keep V8's young generation at its initial size (see
 * keepYoungGenerationSmall): loading their modules is the first burst that would grow it, before the command runs, and
 * both collect it every few MiB moved. Other commands are left as they are (their throughput was not measured with it).
 */
if (process.argv[2] === 'bundle' || process.argv[2] === 'push') keepYoungGenerationSmall()
