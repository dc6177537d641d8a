// The entry of the self-contained installer. scripts/build-installer bundles this file, the built CLI (dist/) and
// every npm dependency into one CommonJS file, which becomes a Node single executable application. Nothing is looked
// up on disk: oclif gets package.json from here, with the explicit command strategy over dist/commands/index.js
// (plus @oclif/plugin-help's `help`), so the commands, flags, --json output and exit codes are those of bin/run.js.
import '../dist/cli/start-settings.js'
import { dirname } from 'node:path'
import { execute, Plugin } from '@oclif/core'
import { commands as helpCommands } from '@oclif/plugin-help'
import { COMMANDS } from '../dist/commands/index.js'
import packageJson from '../package.json' with { type: 'json' }

async function main() {
  const root = dirname(process.execPath)
  const pjson = {
    ...packageJson,
    oclif: {
      ...packageJson.oclif,
      commands: { strategy: 'explicit', target: './dist/commands/index.js', identifier: 'COMMANDS' },
      plugins: [],
    },
  }
  const plugin = new Plugin({ root, pjson, isRoot: true, ignoreManifest: true })
  // The explicit strategy would import its target from disk; the commands are already here.
  plugin.commandCache = { ...COMMANDS, ...helpCommands }
  await plugin.load()
  await execute({ loadOptions: { root, pjson, plugins: new Map([[plugin.name, plugin]]) } })
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`)
  process.exitCode = 1
})
