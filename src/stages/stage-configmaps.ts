/**
 * The `configMaps:` generators of a stage.yaml: each entry makes one ConfigMap whose data keys are the names of the
 * stage files its globs match, and globToRegExp turns such a glob into a pattern.
 */
import { isPlainObject } from './objects.js'
import { unknownKeys } from './stage-problems.js'
import {
  DNS_LABEL,
  MAX_CONFIGMAP_BYTES,
  STAGE_FILE,
  type Stage,
  type StageDocument,
  type StageReport,
} from './stage-types.js'

const CONFIGMAP_KEYS = ['name', 'namespace', 'labels', 'annotations', 'files', 'substitute']
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/

/**
 * One entry of `configMaps:`: a ConfigMap whose data keys are the names of the files its globs match (binaryData for
 * files that are not UTF-8). The files it uses are not applied as manifests, even when they are YAML.
 */
export function parseConfigMap(
  item: unknown,
  field: string,
  stage: Stage,
  member: string,
  files: Map<string, Buffer>,
  used: Set<string>,
  report: StageReport,
): StageDocument | undefined {
  if (!isPlainObject(item)) {
    report(field, 'expected a mapping {name, namespace, labels, annotations, files, substitute}')
    return undefined
  }
  unknownKeys(item, CONFIGMAP_KEYS, `${field}.`, report)
  let ok = true
  if (typeof item.name !== 'string' || !DNS_SUBDOMAIN.test(item.name) || item.name.length > 253) {
    report(`${field}.name`, 'required: a ConfigMap name (lowercase letters, digits, - and .)')
    ok = false
  }
  if (
    item.namespace !== undefined &&
    (typeof item.namespace !== 'string' || !DNS_LABEL.test(item.namespace))
  ) {
    report(`${field}.namespace`, 'expected a namespace name (lowercase letters, digits and -)')
    ok = false
  }
  for (const map of ['labels', 'annotations'] as const) {
    const value = item[map]
    if (value === undefined) continue
    if (!isPlainObject(value) || Object.values(value).some((v) => typeof v !== 'string')) {
      report(`${field}.${map}`, 'expected a mapping of names to text (quote values such as "1")')
      ok = false
    }
  }
  if (item.substitute !== undefined && typeof item.substitute !== 'boolean') {
    report(`${field}.substitute`, 'expected true or false')
    ok = false
  }
  const prefix = `manifests/${stage.name}/`
  const data: Record<string, string> = {}
  const binaryData: Record<string, string> = {}
  const members: Record<string, string> = {}
  let bytes = 0
  if (!Array.isArray(item.files) || item.files.length === 0) {
    report(`${field}.files`, 'required: a list of file names or globs relative to the stage folder')
    ok = false
  } else {
    item.files.forEach((glob, j) => {
      const at = `${field}.files[${j}]`
      if (typeof glob !== 'string' || !glob || glob.startsWith('/') || glob.split('/').includes('..')) {
        report(at, 'expected a file name or glob relative to the stage folder (*, ** and ? match)')
        ok = false
        return
      }
      const pattern = globToRegExp(glob)
      const matched = [...files.keys()]
        .filter(
          (m) =>
            m.startsWith(prefix) && m !== `${prefix}${STAGE_FILE}` && pattern.test(m.slice(prefix.length)),
        )
        .sort()
      if (!matched.length) {
        report(at, `${glob} matches no file in ${prefix}`)
        ok = false
        return
      }
      for (const path of matched) {
        const key = path.slice(path.lastIndexOf('/') + 1)
        if (members[key] === path) continue
        if (!CONFIGMAP_KEY.test(key)) {
          report(at, `${path}: the file name is not a valid ConfigMap key (letters, digits, -, _ and . only)`)
          ok = false
          continue
        }
        if (members[key] !== undefined) {
          report(at, `${path} and ${members[key]} would both be the key ${key}`)
          ok = false
          continue
        }
        members[key] = path
        used.add(path)
        const content = files.get(path)!
        const text = utf8(content)
        if (text === undefined) {
          binaryData[key] = content.toString('base64')
          bytes += key.length + binaryData[key].length
        } else {
          data[key] = text
          bytes += key.length + content.length
        }
      }
    })
  }
  if (bytes > MAX_CONFIGMAP_BYTES) {
    report(
      `${field}.files`,
      `the ConfigMap would hold ${bytes} bytes, more than the ${MAX_CONFIGMAP_BYTES} bytes (1 MiB) a ConfigMap can hold; split it`,
    )
    ok = false
  }
  if (!ok) return undefined
  const metadata: Record<string, unknown> = { name: item.name }
  if (item.namespace !== undefined) metadata.namespace = item.namespace
  if (item.labels !== undefined) metadata.labels = item.labels
  if (item.annotations !== undefined) metadata.annotations = item.annotations
  const object: Record<string, unknown> = { apiVersion: 'v1', kind: 'ConfigMap', metadata }
  if (Object.keys(data).length) object.data = data
  if (Object.keys(binaryData).length) object.binaryData = binaryData
  return {
    source: `${member} ${field}`,
    object,
    generated: { substitute: item.substitute === true, members },
  }
}

function utf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch {
    return undefined
  }
}

/** A glob relative to the stage folder: `*` and `?` within a folder name, `**` across folders. */
export function globToRegExp(glob: string): RegExp {
  let out = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '*' && glob[i + 1] === '*') {
      const slash = glob[i + 2] === '/'
      out += slash ? '(?:.*/)?' : '.*'
      i += slash ? 2 : 1
    } else if (c === '*') out += '[^/]*'
    else if (c === '?') out += '[^/]'
    else out += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${out}$`)
}
