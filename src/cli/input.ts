import { AirgapError } from '../errors.js'
import { parseRegistryLogin, type RegistryLogin } from './flag-key-value.js'

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
 * The credentials of --username REGISTRY=USER (repeatable; parsed by usernameFlag) with --password-stdin (one password
 * line per --username, in order). A USER without REGISTRY= belongs to `defaultRegistry` when the command has one.
 */
export async function readCredentials(
  usernames: ReadonlyArray<RegistryLogin | string> | undefined,
  passwordStdin: boolean,
  defaultRegistry?: string,
): Promise<Record<string, { username: string; password: string }>> {
  const logins = (usernames ?? []).map((u): [string, string] => {
    const login = typeof u === 'string' ? parseRegistryLogin(u, defaultRegistry !== undefined) : u
    if (login.registry !== undefined) return [login.registry, login.username]
    if (defaultRegistry !== undefined) return [defaultRegistry, login.username]
    throw new AirgapError('E_USAGE', `--username ${login.username}: expected REGISTRY=USER.`, {
      hints: ['Write it as --username registry.example:5000=admin.'],
    })
  })
  const passwords = passwordStdin ? await readPasswordsFromStdin(logins.length) : []
  return Object.fromEntries(
    logins.map(([registry, username], i) => [registry, { username, password: passwords[i] ?? '' }]),
  )
}
