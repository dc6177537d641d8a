/**
 * The bundle reader against hostile bundles: every crafted bundle of the corpus (path escapes in tar member names and
 * in bundle.json, NUL and control characters, negative and huge sizes in ustar and pax headers, duplicate members, an
 * oversized bundle.json) is refused with E_INTEGRITY as it is opened, with or without the member scan; a valid bundle
 * built by the same tar writer opens.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BundleReader } from '../../src/bundle/reader.js'
import { bundleNameProblems } from '../../src/bundle/validate-names.js'
import { AirgapError } from '../../src/errors.js'
import { bundleBytes, HELLO, HOSTILE_BUNDLES, validMetadata } from '../support/hostile-bundle.js'

const work = mkdtempSync(join(tmpdir(), 'astrago-hostile-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

async function openError(file: string, scan: boolean): Promise<unknown> {
  try {
    const reader = await BundleReader.open(file, { scan })
    await reader.close()
  } catch (error) {
    return error
  }
  return undefined
}

describe('hostile bundles', () => {
  it('a valid bundle from the same tar writer opens', async () => {
    const file = join(work, 'valid.tar')
    writeFileSync(file, bundleBytes())
    const reader = await BundleReader.open(file)
    try {
      expect((await reader.read('files/hello.txt')).toString()).toBe(HELLO)
      expect(reader.members().map((m) => m.path)).toEqual(['bundle.json', 'files/hello.txt'])
    } finally {
      await reader.close()
    }
  })

  it.each(HOSTILE_BUNDLES.map((b) => [b.name, b] as const))('refuses: %s', async (_name, bundle) => {
    const file = join(work, `${bundle.name.replace(/[^a-z0-9]+/gi, '-')}.tar`)
    bundle.write(file)
    const error = await openError(file, true)
    expect(error, 'the bundle opened').toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_INTEGRITY')
  })

  it('checks bundle.json names without the member scan too (inspect)', async () => {
    for (const bundle of HOSTILE_BUNDLES.filter((b) =>
      /chart|stage|package|image|bundle\.json/.test(b.name),
    )) {
      const file = join(work, `noscan-${bundle.name.replace(/[^a-z0-9]+/gi, '-')}.tar`)
      bundle.write(file)
      const error = await openError(file, false)
      expect((error as AirgapError | undefined)?.code, bundle.name).toBe('E_INTEGRITY')
    }
  })

  it('names the field and the value', () => {
    const m = validMetadata()
    m.charts.push({ name: '../x', version: '1.0.0', path: 'charts/x-1.0.0.tgz' })
    m.stages.push({ name: 'Core/..', files: [] })
    const problems = bundleNameProblems(m)
    expect(problems.map((p) => p.field)).toEqual(['charts[0].name', 'stages[0].name'])
    expect(problems[0]!.problem).toContain('"../x"')
  })

  it("checks a delta's base: a name, a version and a sha256 digest of its bundle.json", () => {
    const m = validMetadata() as ReturnType<typeof validMetadata> & { base?: unknown }
    m.base = { name: 'release', version: '1.0.0', bundleJson: `sha256:${'a'.repeat(64)}` }
    expect(bundleNameProblems(m)).toEqual([])
    m.base = { name: 'x\u0000', version: '1.0.0', bundleJson: '../bundle.json' }
    expect(bundleNameProblems(m).map((p) => p.field)).toEqual(['base.name', 'base.bundleJson'])
    m.base = null
    expect(bundleNameProblems(m).map((p) => p.field)).toEqual([
      'base.name',
      'base.version',
      'base.bundleJson',
    ])
  })

  it('caps bundle.json at 64 MiB', async () => {
    const file = join(work, 'big.tar')
    HOSTILE_BUNDLES.find((b) => b.name.includes('65 MiB'))!.write(file)
    const error = (await openError(file, false)) as AirgapError
    expect(error.code).toBe('E_INTEGRITY')
    expect(error.message).toMatch(/64 MiB/)
  })
})
