/**
 * stage.yaml problems carry file:line:col, found by the same YAML checker as the bundle definition's: the error
 * message lists them as `manifests/<stage>/stage.yaml:<line>:<col>: <field>: <what>` and data.located holds them as
 * {file, line, column, path, message}. data.problems keeps its one-line texts.
 */
import { describe, expect, it } from 'vitest'
import type { BundleMetadata } from '../../src/bundle/metadata.js'
import { AirgapError } from '../../src/errors.js'
import { loadStages } from '../../src/stages/load-stages.js'

/** A bundle with one stage "s" holding `files` (relative path → text). */
async function loadError(files: Record<string, string>): Promise<AirgapError> {
  const members = new Map(Object.entries(files).map(([k, v]) => [`manifests/s/${k}`, v]))
  const metadata = {
    name: 'demo',
    version: '1.0.0',
    charts: [],
    stages: [{ name: 's', files: [...members.keys()] }],
  } as unknown as BundleMetadata
  try {
    await loadStages({ metadata, read: async (member) => Buffer.from(members.get(member) ?? '') })
  } catch (error) {
    expect(error).toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_INPUT')
    return error as AirgapError
  }
  throw new Error('expected the stages to be refused')
}

/** Lines joined into a document, so that a test reads line numbers off the array (index + 1). */
const doc = (...lines: string[]): string => `${lines.join('\n')}\n`

const HEADER = ['apiVersion: airgap.astrago.io/v1alpha1', 'kind: Stage']

describe('stage.yaml problems with file:line:col', () => {
  it('points at the value of a wrong field, the key of an unknown one, and where a missing one is missing', async () => {
    const error = await loadError({
      'stage.yaml': doc(
        ...HEADER,
        'timeout: soon', // 3
        'namespcae: apps', // 4
        'readiness:', // 5
        '  - {apiVersion: v1, kind: Pod, name: p, condition: Ready}', // 6
        '  - kind: Pod', // 7
        '    condition: Ready', // 8
        'values:', // 9
        '  schema: {type: object, properties: {a: {type: strin}}}', // 10
      ),
    })
    const located = error.data?.located as Record<string, unknown>[]
    expect(located).toEqual([
      // Unknown fields are reported first, at their name.
      expect.objectContaining({ line: 4, column: 1, path: 'namespcae' }),
      {
        file: 'manifests/s/stage.yaml',
        line: 3,
        column: 10,
        path: 'timeout',
        message: 'expected a duration such as 90s, 10m or 1h30m',
      },
      expect.objectContaining({ line: 7, column: 5, path: 'readiness[1].apiVersion', message: 'required' }),
      expect.objectContaining({ line: 7, column: 5, path: 'readiness[1].name', message: 'required' }),
      expect.objectContaining({ line: 10, column: 49, path: 'values.schema.properties.a.type' }),
    ])
    expect(error.message).toContain(
      'manifests/s/stage.yaml:3:10: timeout: expected a duration such as 90s, 10m or 1h30m',
    )
    expect(error.message).toContain('manifests/s/stage.yaml:4:1: namespcae: unknown field')
    expect(error.message).toContain('manifests/s/stage.yaml:7:5: readiness[1].apiVersion: required')
    expect(error.message).toMatch(
      /manifests\/s\/stage\.yaml:10:49: values\.schema\.properties\.a\.type: expected one of object/,
    )
    // The one-line texts stay as they were.
    expect(error.data?.problems).toContain(
      'manifests/s/stage.yaml timeout: expected a duration such as 90s, 10m or 1h30m',
    )
  })

  it('points into the lists of charts and ConfigMaps', async () => {
    const error = await loadError({
      'stage.yaml': doc(
        ...HEADER,
        'namespace: apps', // 3
        'charts:', // 4
        '  - chart: nothing', // 5
        'configMaps:', // 6
        '  - name: ok', // 7
        '    files: [a.json, missing/*.json]', // 8
      ),
      'a.json': '{}',
    })
    expect(error.message).toContain(
      'manifests/s/stage.yaml:5:12: charts[0].chart: the bundle has no chart nothing',
    )
    expect(error.message).toContain(
      'manifests/s/stage.yaml:8:21: configMaps[0].files[1]: missing/*.json matches no file in manifests/s/',
    )
  })

  it('gives the line and column of a YAML syntax error in stage.yaml', async () => {
    const error = await loadError({ 'stage.yaml': doc(...HEADER, 'charts: [', '  - chart: x') })
    const [problem] = (error.data?.located ?? []) as {
      file: string
      line: number
      column: number
      message: string
    }[]
    expect(problem).toMatchObject({ file: 'manifests/s/stage.yaml', path: '' })
    expect(problem!.line).toBeGreaterThanOrEqual(3)
    expect(problem!.message).toMatch(/^not valid YAML: /)
    expect(error.message).toContain(
      `manifests/s/stage.yaml:${problem!.line}:${problem!.column}: not valid YAML: `,
    )
  })

  it('lists problems of other members as before, without a position', async () => {
    const error = await loadError({ 'web.yaml': 'apiVersion: v1\nkind: Pod\nmetadata: {}\n' })
    expect(error.data?.problems).toEqual(['manifests/s/web.yaml: metadata.name: required'])
    expect(error.data?.located).toEqual([])
    expect(error.message).toContain('  manifests/s/web.yaml: metadata.name: required')
  })
})
