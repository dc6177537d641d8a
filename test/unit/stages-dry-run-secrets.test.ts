/**
 * `install --dry-run` (and its --json output) shows the plan's site values with every secret hidden: a password the
 * site values give for a `generate: password` value, and one the dry run generates, never appear in the result.
 */
import { describe, expect, it } from 'vitest'
import type { BundleMetadata } from '../../src/bundle/metadata.js'
import { installStages } from '../../src/stages/install-stages.js'
import { REDACTED } from '../../src/stages/redact-values.js'

const STAGE_YAML = `apiVersion: airgap.astrago.io/v1alpha1
kind: Stage
values:
  schema:
    type: object
    properties:
      replicas: {type: integer, default: 1}
      db:
        type: object
        properties:
          adminPassword: {type: string, generate: password}
          userPassword: {type: string, generate: password}
`

const metadata = {
  format: 'astrago-airgap.bundle/v1',
  name: 'secrets',
  version: '1.0.0',
  createdBy: 'test',
  platforms: ['linux/amd64'],
  images: [],
  charts: [],
  files: [],
  stages: [{ name: 'web', files: ['manifests/web/stage.yaml'] }],
  members: [],
  totals: { contentBytes: 0, imageBytesWithoutDedup: 0, blobBytes: 0 },
} as unknown as BundleMetadata

const reader = {
  metadata,
  read: async (path: string) =>
    path === 'bundle.json' ? Buffer.from(JSON.stringify(metadata)) : Buffer.from(STAGE_YAML),
}

describe('install --dry-run and secrets', () => {
  it('hides given and generated passwords in the plan values', async () => {
    const result = await installStages({
      reader,
      kubeconfig: '/nonexistent',
      siteValues: { replicas: 2, db: { adminPassword: 'hunter2-given-Zq8' } },
      helm: 'helm',
      dryRun: true,
      sink: { emit: () => {} },
    })
    const json = JSON.stringify(result)
    expect(json).not.toContain('hunter2-given-Zq8')
    const generated = result.generated?.find((g) => g.path === 'db.userPassword')
    expect(generated?.value.length).toBeGreaterThan(8)
    expect(json).not.toContain(generated!.value)
    expect(result.plan?.values).toEqual({
      replicas: 2,
      db: { adminPassword: REDACTED, userPassword: REDACTED },
    })
  })
})
