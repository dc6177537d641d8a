import { AirgapError } from '../errors.js'
import { parseKeyValue } from './flags.js'

/** Reads `count` lines from stdin (passwords for --password-stdin); never echoes them anywhere. */
export async function readPasswordsFromStdin(count: number): Promise<string[]> {
  if (count === 0)
    throw new AirgapError('E_USAGE', '--password-stdin needs at least one --username REGISTRY=USER.')
  if (process.stdin.isTTY)
    throw new AirgapError(
      'E_USAGE',
      '--password-stdin reads from a pipe, e.g. echo "$TOKEN" | astrago-airgap …',
    )
  let text = ''
  for await (const chunk of process.stdin) text += chunk
  const lines = text.split(/\r?\n/)
  if (lines.length < count || lines.slice(0, count).some((l) => l === '')) {
    throw new AirgapError(
      'E_USAGE',
      `--password-stdin expected ${count} non-empty line(s), one per --username.`,
    )
  }
  return lines.slice(0, count)
}

/**
 * The credentials of --username REGISTRY=USER (repeatable) with --password-stdin (one password line per --username,
 * in order). A USER without REGISTRY= belongs to `defaultRegistry` when the command has one.
 */
export async function readCredentials(
  usernames: string[] | undefined,
  passwordStdin: boolean,
  defaultRegistry?: string,
): Promise<Record<string, { username: string; password: string }>> {
  const logins = (usernames ?? []).map((u): [string, string] =>
    !u.includes('=') && defaultRegistry ? [defaultRegistry, u] : parseKeyValue('username', u),
  )
  const passwords = passwordStdin ? await readPasswordsFromStdin(logins.length) : []
  return Object.fromEntries(
    logins.map(([registry, username], i) => [registry, { username, password: passwords[i] ?? '' }]),
  )
}

/** Sets a nested value (key path split on dots), creating objects on the way. */
export function setValue(target: Record<string, unknown>, path: string[], value: unknown): void {
  let current = target
  for (const key of path.slice(0, -1)) {
    if (typeof current[key] !== 'object' || current[key] === null) current[key] = {}
    current = current[key] as Record<string, unknown>
  }
  const last = path.at(-1)
  if (!last) throw new AirgapError('E_USAGE', '--set needs CHART.KEY=VALUE.')
  current[last] =
    value === 'true'
      ? true
      : value === 'false'
        ? false
        : /^-?\d+$/.test(String(value))
          ? Number(value)
          : value
}
