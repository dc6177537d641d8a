import { Flags } from '@oclif/core'
import { AirgapError } from '../errors.js'

/**
 * Flags whose value is KEY=VALUE (--mirror, --mirror-keyring, --username REGISTRY=USER), parsed by oclif when it reads
 * the command line, so a command gets typed pairs and a bad value fails with the flag's name before any work starts.
 */

/** A parsed KEY=VALUE flag value. */
export interface KeyValue {
  key: string
  value: string
}

/** The KEY=VALUE values of a repeatable flag as a record (a later KEY wins). */
export function keyValueRecord(pairs: readonly KeyValue[] | undefined): Record<string, string> {
  return Object.fromEntries((pairs ?? []).map(({ key, value }) => [key, value]))
}

/** A --username value: the registry it logs in to (absent for a bare USER) and the user name. */
export interface RegistryLogin {
  registry?: string
  username: string
}

/**
 * KEY=VALUE → [key, value], split at the first "=" (the value may hold more). `shape` names the two parts in the
 * error (FROM=URL, REGISTRY=USER) and `example` shows a good value.
 */
export function parseKeyValue(
  flag: string,
  text: string,
  shape = 'KEY=VALUE',
  example?: string,
): [string, string] {
  const eq = text.indexOf('=')
  if (eq <= 0 || eq === text.length - 1) {
    const missing =
      eq < 0 ? 'there is no "="' : eq === 0 ? `the part before "=" is empty` : `the part after "=" is empty`
    throw new AirgapError('E_USAGE', `--${flag} ${text}: expected ${shape}, but ${missing}.`, {
      hints: [`Write it as --${flag} ${example ?? shape}.`],
    })
  }
  return [text.slice(0, eq), text.slice(eq + 1)]
}

/** A --mirror value: FROM=URL, where URL must be an absolute URL (http:// or https://). */
export function parseMirror(text: string): KeyValue {
  const example = 'docker.io=https://harbor.corp.example/v2/dockerhub-proxy'
  const [from, to] = parseKeyValue('mirror', text, 'FROM=URL', example)
  let url: URL | undefined
  try {
    url = new URL(to)
  } catch {
    url = undefined
  }
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new AirgapError('E_USAGE', `--mirror ${text}: "${to}" is not an http:// or https:// URL.`, {
      hints: [
        `Write it as --mirror ${example} (a registry) or --mirror https://get.helm.sh=http://files.local/helm (a URL prefix).`,
      ],
    })
  }
  return { key: from, value: to }
}

/** A --username value: REGISTRY=USER, or a bare USER when the command has a registry of its own (`bareAllowed`). */
export function parseRegistryLogin(text: string, bareAllowed: boolean): RegistryLogin {
  if (bareAllowed && !text.includes('=')) {
    if (text.trim() === '')
      throw new AirgapError('E_USAGE', '--username is empty.', { hints: ['Write it as --username USER.'] })
    return { username: text }
  }
  const [registry, username] = parseKeyValue('username', text, 'REGISTRY=USER', 'registry.example:5000=admin')
  return { registry, username }
}

/** A --mirror-keyring value: URL-PREFIX=KEYRING. */
export function parseMirrorKeyring(text: string): KeyValue {
  const example = 'https://apt.corp.example=/etc/apt/keyrings/corp.gpg'
  const [key, value] = parseKeyValue('mirror-keyring', text, 'URL-PREFIX=KEYRING', example)
  return { key, value }
}

/** Repeatable --mirror FROM=URL. */
export const mirrorFlag = Flags.custom<KeyValue>({
  description:
    'Fetch from a mirror instead: REGISTRY=URL for images (docker.io=https://harbor.corp/v2-proxy), or URL-PREFIX=URL for charts and files. Repeatable. The bundle keeps the original names.',
  multiple: true,
  helpValue: 'FROM=URL',
  parse: async (input) => parseMirror(input),
})()

/** Repeatable --mirror-keyring URL-PREFIX=KEYRING. */
export const mirrorKeyringFlag = Flags.custom<KeyValue>({
  description:
    "URL-PREFIX=KEYRING: check package metadata from a mirror that signs with its own key (aptly, Artifactory) against KEYRING instead of the definition's keyrings. Repeatable.",
  multiple: true,
  helpValue: 'URL-PREFIX=KEYRING',
  parse: async (input) => parseMirrorKeyring(input),
})()

/**
 * Repeatable --username REGISTRY=USER (the passwords come from --password-stdin, see readCredentials). With
 * `bareAllowed`, a USER alone is accepted and belongs to the command's own registry.
 */
export function usernameFlag(options: { description: string; helpValue?: string; bareAllowed?: boolean }) {
  const bareAllowed = options.bareAllowed ?? false
  return Flags.custom<RegistryLogin>({
    description: options.description,
    multiple: true,
    ...(options.helpValue ? { helpValue: options.helpValue } : {}),
    parse: async (input) => parseRegistryLogin(input, bareAllowed),
  })()
}
