import { AirgapError } from '../errors.js'
import { type RpmChecksum, rpmChecksumOf } from './rpm-package.js'
import { walkXml } from './xml-scanner.js'

/**
 * repodata/repomd.xml, the entry point of an rpm-md repository: which metadata files exist (primary, filelists,
 * other…), with their checksums and sizes.
 */

export interface RepomdData {
  /** primary, filelists, other, primary_db, updateinfo, modules, group… */
  type: string
  /** Relative to the repository root, e.g. `repodata/<hex>-primary.xml.gz`. */
  location: string
  checksum: RpmChecksum
  openChecksum?: RpmChecksum
  size?: number
  openSize?: number
  timestamp?: number
}

export interface Repomd {
  revision?: string
  data: RepomdData[]
}

export function parseRepomd(xml: string): Repomd {
  const repomd: Repomd = { data: [] }
  let current: Partial<RepomdData> | undefined
  let sawRoot = false
  walkXml(
    xml,
    (path, attributes, text) => {
      const name = path[path.length - 1]!
      if (path.length === 2 && name === 'revision') repomd.revision = text.trim()
      if (!current || path.length !== 3) {
        if (path.length === 2 && name === 'data' && current) {
          if (!current.location || !current.checksum)
            throw new AirgapError('E_INPUT', `repomd.xml: data ${current.type} has no location or checksum`)
          repomd.data.push(current as RepomdData)
          current = undefined
        }
        return
      }
      if (name === 'checksum') current.checksum = rpmChecksumOf(attributes, text)
      else if (name === 'open-checksum') current.openChecksum = rpmChecksumOf(attributes, text)
      else if (name === 'location') current.location = attributes.href ?? ''
      else if (name === 'size') current.size = Number(text.trim())
      else if (name === 'open-size') current.openSize = Number(text.trim())
      else if (name === 'timestamp') current.timestamp = Number(text.trim())
    },
    (path, attributes) => {
      if (path.length === 1) {
        if (path[0] !== 'repomd')
          throw new AirgapError('E_INPUT', `not a repomd.xml: the root element is <${path[0]}>`)
        sawRoot = true
      }
      if (path.length === 2 && path[1] === 'data') current = { type: attributes.type ?? '' }
    },
  )
  if (!sawRoot) throw new AirgapError('E_INPUT', 'not a repomd.xml: no <repomd> element')
  return repomd
}
