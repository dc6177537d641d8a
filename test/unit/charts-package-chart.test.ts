import { chmodSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { packageChart } from '../../src/charts/package-chart.js'
import { AirgapError } from '../../src/errors.js'

const work = mkdtempSync(join(tmpdir(), 'package-chart-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))

function writeChart(dir: string, files: Record<string, string>): string {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true })
    writeFileSync(join(dir, path), content)
  }
  return dir
}

const files = {
  'Chart.yaml': 'apiVersion: v2\nname: web\nversion: 1.0.0\n',
  'values.yaml': 'replicas: 1\n',
  '.helmignore': 'ci/\n',
  'ci/test-values.yaml': 'x: 1\n',
  'templates/deployment.yaml': 'kind: Deployment\n',
  'charts/old/Chart.yaml': 'apiVersion: v2\nname: old\nversion: 0.1.0\n',
}

describe('packageChart', () => {
  it('gives the same bytes for the same files, whatever their times and modes', async () => {
    const a = writeChart(join(work, 'a'), files)
    const b = writeChart(join(work, 'b'), files)
    utimesSync(join(b, 'values.yaml'), new Date(1999, 0, 1), new Date(1999, 0, 1))
    chmodSync(join(b, 'templates/deployment.yaml'), 0o755)
    const pa = await packageChart(a)
    const pb = await packageChart(b)
    expect(pa.sha256).toBe(pb.sha256)
    expect(pa.fileName).toBe('web-1.0.0.tgz')
    expect(pa.metadata).toMatchObject({ name: 'web', version: '1.0.0' })
    expect(pa.files).toEqual([
      '.helmignore',
      'Chart.yaml',
      'charts/old/Chart.yaml',
      'templates/deployment.yaml',
      'values.yaml',
    ])
  })

  it('adds extra files and leaves out omitted folders, without touching the chart folder', async () => {
    const dir = writeChart(join(work, 'c'), files)
    const extra = join(work, 'dep.tgz')
    writeFileSync(extra, 'not really a chart, but bytes')
    const packaged = await packageChart(dir, {
      extraFiles: new Map([['charts/dep-1.0.0.tgz', extra]]),
      omit: new Set(['charts/old']),
    })
    expect(packaged.files).toContain('charts/dep-1.0.0.tgz')
    expect(packaged.files.some((f) => f.startsWith('charts/old'))).toBe(false)
    const plain = await packageChart(dir)
    expect(plain.files).toContain('charts/old/Chart.yaml')
    expect(plain.sha256).not.toBe(packaged.sha256)
  })

  it('refuses a folder with no Chart.yaml as E_INPUT', async () => {
    const dir = writeChart(join(work, 'd'), { 'values.yaml': 'a: 1\n' })
    const error = await packageChart(dir).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_INPUT')
  })
})
