import { accessSync, constants, statSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { AirgapError } from '../errors.js'

/** Where the helm binary comes from when nothing is carried in a bundle: a given path or name, $ASTRAGO_HELM, PATH. */
export const helmHints = [
  'Install helm 3 (https://helm.sh/docs/intro/install/) and put it on PATH,',
  'or give its path with --helm or the ASTRAGO_HELM environment variable.',
]

/**
 * The helm binary to run: `explicit` (a path, or a command name looked up on PATH), else $ASTRAGO_HELM, else `helm`
 * on PATH. Missing is E_ENVIRONMENT.
 */
export function findHelm(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  const wanted = explicit || env.ASTRAGO_HELM
  const from = explicit ? 'given' : env.ASTRAGO_HELM ? 'ASTRAGO_HELM' : undefined
  if (wanted) {
    const found = wanted.includes('/') ? (isExecutable(wanted) ? wanted : undefined) : onPath(wanted, env)
    if (found) return found
    throw new AirgapError('E_ENVIRONMENT', `helm was not found at ${wanted} (${from}).`, { hints: helmHints })
  }
  const found = onPath('helm', env)
  if (found) return found
  throw new AirgapError('E_ENVIRONMENT', 'helm was not found on PATH; it is needed to render charts.', {
    hints: helmHints,
  })
}

function onPath(command: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue
    const candidate = join(dir, command)
    if (isExecutable(candidate)) return candidate
  }
  return undefined
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return statSync(path).isFile()
  } catch {
    return false
  }
}
