import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { AirgapError } from '../errors.js'

/** A username/password (or identity token) for one registry. Never logged. */
export interface Credential {
  username: string
  password: string
}

/** Where credentials come from: explicit ones first, then the Docker config file and its credential helpers. */
export interface CredentialStore {
  get(registry: string): Promise<Credential | undefined>
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>
  credHelpers?: Record<string, string>
  credsStore?: string
}

const HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io']

function configKeysFor(registry: string): string[] {
  if (registry === 'docker.io') return HUB_KEYS
  return [
    registry,
    `https://${registry}`,
    `http://${registry}`,
    `https://${registry}/v1/`,
    `https://${registry}/v2/`,
  ]
}

export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json')
}

/**
 * Called when a source of credentials is there but unusable (an unreadable config file, a failing credential helper,
 * an auth entry that does not decode): the lookup then goes on without it, anonymous at worst, but never silently.
 * The message names the file or helper, never a secret.
 */
export type CredentialWarning = (message: string) => void

export class DefaultCredentialStore implements CredentialStore {
  private config: Promise<DockerConfigFile | undefined> | undefined
  private readonly cache = new Map<string, Promise<Credential | undefined>>()

  constructor(
    private readonly explicit: Record<string, Credential> = {},
    private readonly configFile: string = dockerConfigPath(),
    private readonly warn: CredentialWarning = () => {},
  ) {}

  async get(registry: string): Promise<Credential | undefined> {
    const given = this.explicit[registry]
    if (given) return given
    let result = this.cache.get(registry)
    if (!result) {
      result = this.lookup(registry)
      this.cache.set(registry, result)
    }
    return await result
  }

  private async lookup(registry: string): Promise<Credential | undefined> {
    this.config ??= readDockerConfig(this.configFile, this.warn)
    const config = await this.config
    if (!config) return undefined
    const keys = configKeysFor(registry)
    const helper = config.credHelpers?.[registry] ?? config.credsStore
    if (helper) {
      const fromHelper = await runCredentialHelper(
        helper,
        registry === 'docker.io' ? HUB_KEYS[0]! : registry,
        (why) =>
          this.warn(
            `The Docker credential helper docker-credential-${helper} (named in ${this.configFile}) failed for ${registry}: ${why}; going on without its credentials.`,
          ),
      )
      if (fromHelper) return fromHelper
    }
    for (const key of keys) {
      const entry = config.auths?.[key]
      if (!entry) continue
      if (entry.identitytoken) return { username: '<token>', password: entry.identitytoken }
      if (entry.username && entry.password) return { username: entry.username, password: entry.password }
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
        const colon = decoded.indexOf(':')
        if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
        this.warn(
          `The "auth" entry for ${key} in ${this.configFile} is not base64 of user:password; going on without it.`,
        )
      }
    }
    return undefined
  }
}

async function readDockerConfig(
  file: string,
  warn: CredentialWarning,
): Promise<DockerConfigFile | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    // No file is the usual case (no docker login ever): quiet. One that is there but unreadable is not.
    const code = (error as NodeJS.ErrnoException).code
    if (code !== 'ENOENT' && code !== 'ENOTDIR')
      warn(
        `The Docker config file ${file} cannot be read (${code ?? (error as Error).message}); going on without its credentials.`,
      )
    return undefined
  }
  try {
    return JSON.parse(text) as DockerConfigFile
  } catch (error) {
    throw new AirgapError('E_INPUT', `The Docker config file ${file} is not valid JSON.`, {
      cause: error,
      hints: ['Fix or move the file; astrago-airgap reads registry credentials from it.'],
    })
  }
}

/**
 * Runs docker-credential-<helper> get, as Docker does. A helper that has nothing for the server ("credentials not
 * found") yields undefined quietly; one that fails otherwise, or prints something that is not its JSON answer, yields
 * undefined and a warning saying why (its own output is not repeated: it may hold a secret).
 */
async function runCredentialHelper(
  helper: string,
  server: string,
  warn: (why: string) => void,
): Promise<Credential | undefined> {
  const program = `docker-credential-${helper}`
  return await new Promise((resolve, reject) => {
    const child = spawn(program, ['get'], { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stderr.on('data', (d) => {
      err += d
    })
    child.on('error', (error) =>
      reject(
        new AirgapError(
          'E_AUTH',
          `The Docker credential helper ${program} could not be run: ${error.message}`,
          {
            hints: [`Install ${program}, or remove "${helper}" from ${dockerConfigPath()}.`],
          },
        ),
      ),
    )
    child.on('close', (code) => {
      if (code !== 0) {
        if (!/credentials not found|no credentials/i.test(`${out}\n${err}`))
          warn(`it exited with code ${code}`)
        return resolve(undefined)
      }
      try {
        const parsed = JSON.parse(out) as { Username?: string; Secret?: string }
        if (!parsed.Secret) return resolve(undefined)
        resolve({ username: parsed.Username ?? '', password: parsed.Secret })
      } catch {
        warn('its answer is not the JSON a credential helper prints')
        resolve(undefined)
      }
    })
    child.stdin.end(server)
  })
}
