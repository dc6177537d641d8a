// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ site.x }} is the site value syntax under test
// Optional stages: `enabled:` in stage.yaml, read from the site values (after defaults) before anything is planned.
import { describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import { generatedPaths } from '../../src/stages/generated-values.js'
import { parseStage } from '../../src/stages/load-stages.js'
import { enabledStages } from '../../src/stages/optional-stages.js'
import { planStages } from '../../src/stages/plan-stages.js'

const configMap = (name: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}}\ndata: {a: b}\n`

function stage(name: string, stageYaml?: string) {
  const problems: string[] = []
  const files = new Map([[`manifests/${name}/cm.yaml`, configMap(name)]])
  if (stageYaml) files.set(`manifests/${name}/stage.yaml`, stageYaml)
  const parsed = parseStage(name, files, [], problems)
  if (stageYaml) parsed.stageFile = `manifests/${name}/stage.yaml`
  return { parsed, problems }
}

const HEAD = 'apiVersion: airgap.astrago.io/v1alpha1\nkind: Stage\n'
const REGISTRY = `${HEAD}enabled: \${{ site.registry.enabled }}
values:
  schema:
    type: object
    required: [registry]
    properties:
      registry:
        type: object
        required: [enabled, adminPassword]
        properties:
          enabled: { type: boolean, default: false }
          adminPassword: { type: string, generate: password }
`

describe('optional stages', () => {
  it('reads enabled: as a boolean or one site value reference, and refuses anything else', () => {
    expect(stage('r', REGISTRY).parsed.enabled).toBe('${{ site.registry.enabled }}')
    expect(stage('r', `${HEAD}enabled: false\n`).parsed.enabled).toBe(false)
    expect(stage('r', `${HEAD}\n`).parsed.enabled).toBeUndefined()
    for (const bad of ['"yes"', '"on ${{ site.x }}"', '[true]', '"${{ site.a }}${{ site.b }}"']) {
      const { problems } = stage('r', `${HEAD}enabled: ${bad}\n`)
      expect(problems.join('\n'), bad).toMatch(
        /manifests\/r\/stage\.yaml enabled: expected true, false or one site value reference/,
      )
    }
  })

  it('leaves a stage out when its value is false or defaults to false, and keeps it when true', () => {
    const base = stage('base').parsed
    const registry = stage('registry', REGISTRY).parsed
    const off = stage('off', `${HEAD}enabled: false\n`).parsed
    const on = stage('on', `${HEAD}enabled: true\n`).parsed
    const all = [base, registry, off, on]
    expect(enabledStages(all, {}).map((s) => s.name)).toEqual(['base', 'on'])
    expect(enabledStages(all, { registry: { enabled: false } }).map((s) => s.name)).toEqual(['base', 'on'])
    expect(enabledStages(all, { registry: { enabled: true } }).map((s) => s.name)).toEqual([
      'base',
      'registry',
      'on',
    ])
  })

  it('does not check or generate the values of a stage that is off, and plans without it', () => {
    const base = stage('base').parsed
    const registry = stage('registry', REGISTRY).parsed
    const kept = enabledStages([base, registry], {})
    expect(generatedPaths(kept)).toEqual([])
    // Without the filter the registry stage's required password would be missing.
    expect(() => planStages([base, registry], {})).toThrow(/registry.adminPassword: required/)
    const plan = planStages(kept, {})
    expect(plan.stages.map((s) => s.name)).toEqual(['base'])
    // On: the stage is planned and its password is one to generate.
    const withIt = enabledStages([base, registry], { registry: { enabled: true } })
    expect(generatedPaths(withIt)).toEqual([['registry', 'adminPassword']])
    expect(
      planStages(withIt, { registry: { enabled: true, adminPassword: 'x'.repeat(12) } }).stages.map(
        (s) => s.name,
      ),
    ).toEqual(['base', 'registry'])
  })

  it('names the stage file and the value when the value is not a boolean', () => {
    const registry = stage('registry', REGISTRY).parsed
    let error: unknown
    try {
      enabledStages([registry], { registry: { enabled: 'yes' } })
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(AirgapError)
    expect((error as AirgapError).code).toBe('E_INPUT')
    expect((error as AirgapError).message).toContain(
      'manifests/registry/stage.yaml enabled: ${{ site.registry.enabled }} is "yes"; expected true or false',
    )
    const unset = stage('x', `${HEAD}enabled: \${{ site.nothing.here }}\n`).parsed
    expect(() => enabledStages([unset], {})).toThrow(/manifests\/x\/stage\.yaml enabled.*nothing/)
  })
})
