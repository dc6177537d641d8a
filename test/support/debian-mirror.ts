import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

/**
 * The Debian archive this machine's apt uses, read from its apt configuration (one-line /etc/apt/sources.list and
 * deb822 /etc/apt/sources.list.d/*.sources), so no host name is written into the repository. The first `deb` source
 * that carries the wanted suite (default bookworm) and the `main` component wins.
 */
export interface DebianMirror {
  url: string
  suite: string
  /** The keyring the source is signed with (its Signed-By), or Debian's archive keyring. */
  keyring: string
}

interface SourceEntry {
  types: string[]
  uris: string[]
  suites: string[]
  components: string[]
  signedBy?: string
}

function readOneLine(text: string): SourceEntry[] {
  const entries: SourceEntry[] = []
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim()
    if (!line) continue
    const options = /\[([^\]]*)\]/.exec(line)?.[1] ?? ''
    const words = line
      .replace(/\[[^\]]*\]/, '')
      .trim()
      .split(/\s+/)
    if (words.length < 3) continue
    const signedBy = /signed-by=(\S+)/.exec(options)?.[1]
    entries.push({
      types: [words[0]!],
      uris: [words[1]!],
      suites: [words[2]!],
      components: words.slice(3),
      ...(signedBy ? { signedBy } : {}),
    })
  }
  return entries
}

function readDeb822(text: string): SourceEntry[] {
  const entries: SourceEntry[] = []
  for (const paragraph of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>()
    for (const line of paragraph.split('\n')) {
      if (line.startsWith('#') || !line.includes(':') || /^\s/.test(line)) continue
      const colon = line.indexOf(':')
      fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim())
    }
    if (!fields.has('uris') || fields.get('enabled')?.toLowerCase() === 'no') continue
    const words = (name: string) => (fields.get(name) ?? '').split(/\s+/).filter(Boolean)
    const signedBy = fields.get('signed-by')
    entries.push({
      types: words('types'),
      uris: words('uris'),
      suites: words('suites'),
      components: words('components'),
      ...(signedBy && !signedBy.includes('\n') ? { signedBy } : {}),
    })
  }
  return entries
}

export function aptSourceEntries(root = '/etc/apt'): SourceEntry[] {
  const entries: SourceEntry[] = []
  const list = join(root, 'sources.list')
  if (existsSync(list)) entries.push(...readOneLine(readFileSync(list, 'utf8')))
  const dir = join(root, 'sources.list.d')
  if (existsSync(dir)) {
    for (const name of readdirSync(dir).sort()) {
      const text = readFileSync(join(dir, name), 'utf8')
      if (name.endsWith('.list')) entries.push(...readOneLine(text))
      else if (name.endsWith('.sources')) entries.push(...readDeb822(text))
    }
  }
  return entries
}

export function debianMirror(suite = 'bookworm'): DebianMirror {
  for (const entry of aptSourceEntries()) {
    if (!entry.types.includes('deb') || !entry.suites.includes(suite) || !entry.components.includes('main'))
      continue
    const url = entry.uris[0]
    if (!url) continue
    return {
      url: url.replace(/\/+$/, ''),
      suite,
      keyring: entry.signedBy ?? '/usr/share/keyrings/debian-archive-keyring.gpg',
    }
  }
  throw new Error(
    `No apt source for Debian ${suite} main in /etc/apt/sources.list or /etc/apt/sources.list.d; the apt oracle test ` +
      'mirrors from the archive this machine uses.',
  )
}

/**
 * The Astrago node package list (../shared/reference/astrago-inventory.md section 4, its Ubuntu list) in Debian
 * bookworm names: python-cryptography (Python 2) no longer exists, gnupg-agent is gpg-agent, python3.11* is
 * bookworm's default Python; everything else keeps its name.
 */
export const ASTRAGO_DEBIAN_PACKAGES = [
  'python3-minimal',
  'python3-selinux',
  'python3-cryptography',
  'python3-apt',
  'apt-transport-https',
  'software-properties-common',
  'conntrack',
  'apparmor',
  'libseccomp2',
  'gcc',
  'libffi-dev',
  'libssl-dev',
  'build-essential',
  'curl',
  'rsync',
  'socat',
  'unzip',
  'e2fsprogs',
  'xfsprogs',
  'ebtables',
  'bash-completion',
  'ipvsadm',
  'ipset',
  'firewalld',
  'lvm2',
  'gpg-agent',
  'sshpass',
  'nfs-common',
  'nfs-kernel-server',
  'python3.11',
  'python3.11-venv',
  'python3.11-dev',
]
