import Audit from './audit.js'
import Bundle from './bundle.js'
import Diff from './diff.js'
import InitSite from './init-site.js'
import Inspect from './inspect.js'
import Install from './install.js'
import Publish from './publish.js'
import Pull from './pull.js'
import Push from './push.js'
import Serve from './serve.js'
import Status from './status.js'
import Uninstall from './uninstall.js'
import Verify from './verify.js'

/**
 * Every command, by id: oclif's explicit command strategy (package.json `oclif.commands`) reads this, so commands are
 * found without listing a folder, which is what lets the self-contained installer (one bundled file, see
 * scripts/build-installer) carry them. A new command must be added here.
 */
export const COMMANDS = {
  audit: Audit,
  bundle: Bundle,
  diff: Diff,
  'init-site': InitSite,
  inspect: Inspect,
  install: Install,
  publish: Publish,
  pull: Pull,
  push: Push,
  serve: Serve,
  status: Status,
  uninstall: Uninstall,
  verify: Verify,
}
