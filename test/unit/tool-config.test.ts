import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadToolConfig } from '../../src/spec/tool-config.js'

const dir = mkdtempSync(join(tmpdir(), 'astrago-config-'))
const file = (name: string, text: string) => {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

describe('loadToolConfig', () => {
  it('reads mirrors, insecure registries and CA files', async () => {
    const config = await loadToolConfig(
      file(
        'ok.yaml',
        'mirrors:\n  docker.io: https://m.example/v2\n  https://get.helm.sh: http://f/helm\ninsecureRegistries: [lab:5000]\n',
      ),
    )
    expect(config).toEqual({
      mirrors: { 'docker.io': 'https://m.example/v2', 'https://get.helm.sh': 'http://f/helm' },
      insecureRegistries: ['lab:5000'],
      caFiles: [],
    })
  })

  it('is empty without a file', async () => {
    expect(await loadToolConfig(undefined)).toEqual({ mirrors: {}, insecureRegistries: [], caFiles: [] })
  })

  it.each([
    ['unknown.yaml', 'mirror: {}\n', /unknown field "mirror"/],
    ['list.yaml', 'insecureRegistries: lab:5000\n', /list of strings/],
    ['bad.yaml', 'mirrors: [\n', /not valid YAML/],
    ['value.yaml', 'mirrors:\n  docker.io: 5\n', /mirrors\.docker\.io/],
  ])('%s is an input error naming the problem', async (name, text, pattern) => {
    await expect(loadToolConfig(file(name, text))).rejects.toMatchObject({
      code: 'E_INPUT',
      message: expect.stringMatching(pattern),
    })
  })

  it('names a missing file', async () => {
    await expect(loadToolConfig(join(dir, 'nope.yaml'))).rejects.toMatchObject({
      code: 'E_INPUT',
      message: expect.stringContaining('nope.yaml'),
    })
  })
})
