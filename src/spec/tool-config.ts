import { readFile } from 'node:fs/promises'
import * as yaml from 'js-yaml'
import { AirgapError } from '../errors.js'

/**
 * The connected machine's settings that do not belong in a bundle definition: upstream mirrors, registries without
 * TLS, extra CAs. Read from `--config FILE` (or $ASTRAGO_AIRGAP_CONFIG); flags given on the command line add to it and
 * win on conflicts. Credentials never go here: they come from the Docker config or --password-stdin.
 *
 *   mirrors:
 *     docker.io: https://harbor.corp.example/v2/dockerhub-proxy
 *     https://get.helm.sh: https://files.corp.example/helm
 *   insecureRegistries: [registry.lab:5000]
 *   caFiles: [/etc/ssl/corp-ca.pem]
 */
export interface ToolConfig {
  mirrors: Record<string, string>
  insecureRegistries: string[]
  caFiles: string[]
}

const KEYS = new Set(['mirrors', 'insecureRegistries', 'caFiles'])

export async function loadToolConfig(file: string | undefined): Promise<ToolConfig> {
  const empty: ToolConfig = { mirrors: {}, insecureRegistries: [], caFiles: [] }
  if (!file) return empty
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    throw new AirgapError('E_INPUT', `Cannot read the config file ${file}: ${(error as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = yaml.load(text) ?? {}
  } catch (error) {
    throw new AirgapError('E_INPUT', `The config file ${file} is not valid YAML: ${(error as Error).message}`)
  }
  const fail = (why: string): never => {
    throw new AirgapError('E_INPUT', `The config file ${file}: ${why}`, {
      hints: ['It takes mirrors (a map FROM: URL), insecureRegistries and caFiles (lists of strings).'],
    })
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return fail('expected a mapping at the top')
  const record = parsed as Record<string, unknown>
  for (const key of Object.keys(record)) if (!KEYS.has(key)) fail(`unknown field "${key}"`)
  const strings = (key: string): string[] => {
    const value = record[key] ?? []
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string'))
      return fail(`${key} must be a list of strings`)
    return value as string[]
  }
  const mirrors = record.mirrors ?? {}
  if (typeof mirrors !== 'object' || mirrors === null || Array.isArray(mirrors))
    return fail('mirrors must be a mapping')
  for (const [from, to] of Object.entries(mirrors))
    if (typeof to !== 'string') fail(`mirrors.${from} must be a URL string`)
  return {
    mirrors: mirrors as Record<string, string>,
    insecureRegistries: strings('insecureRegistries'),
    caFiles: strings('caFiles'),
  }
}
