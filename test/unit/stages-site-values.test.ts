// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ site.x }} is the site value syntax under test
import { describe, expect, it } from 'vitest'
import { AirgapError } from '../../src/errors.js'
import {
  applyDefaults,
  checkValuesSchema,
  parseSiteValues,
  resolveSiteValues,
  substituteSiteValues,
  type ValuesSchema,
  validateValue,
} from '../../src/stages/site-values.js'

const storage: ValuesSchema = {
  type: 'object',
  required: ['nfs'],
  properties: {
    nfs: {
      type: 'object',
      required: ['server', 'path'],
      properties: {
        server: { type: 'string', pattern: '^[a-z0-9.-]+$' },
        path: { type: 'string', pattern: '^/' },
        version: { type: 'integer', enum: [3, 4], default: 4 },
      },
    },
    replicas: { type: 'integer', minimum: 1, maximum: 5, default: 2 },
  },
}

describe('site values: validation', () => {
  it('names each problem by its path', () => {
    expect(validateValue({}, storage, '')).toEqual(['nfs: required'])
    expect(validateValue({ nfs: {} }, storage, '')).toEqual(['nfs.server: required', 'nfs.path: required'])
    expect(
      validateValue({ nfs: { server: 'NFS!', path: 'x', version: 5 }, replicas: 9 }, storage, ''),
    ).toEqual([
      'nfs.server: "NFS!" does not match ^[a-z0-9.-]+$',
      'nfs.path: "x" does not match ^/',
      'nfs.version: must be one of 3, 4',
      'replicas: must be at most 5',
    ])
    expect(validateValue({ nfs: 'x' }, storage, '')).toEqual(['nfs: expected a mapping, got text "x"'])
    expect(validateValue({ nfs: { server: 'a', path: '/', version: 4.5 } }, storage, '')).toEqual([
      'nfs.version: expected a whole number, got number 4.5',
    ])
  })

  it('checks list items and refuses unknown keys where asked', () => {
    const schema: ValuesSchema = {
      type: 'object',
      additionalProperties: false,
      properties: { gpus: { type: 'array', items: { type: 'object', required: ['model'] } }, domain: {} },
    }
    expect(validateValue({ gpus: [{ model: 'a100' }, {}], domian: 'x' }, schema, '')).toEqual([
      'gpus[1].model: required',
      'domian: unknown value (did you mean "domain"?)',
    ])
  })

  it('fills defaults, creating parents only where a default lands', () => {
    expect(applyDefaults(storage, {})).toEqual({ nfs: { version: 4 }, replicas: 2 })
    expect(applyDefaults(storage, { nfs: { server: 'a', version: 3 }, replicas: 1 })).toEqual({
      nfs: { server: 'a', version: 3 },
      replicas: 1,
    })
    expect(
      applyDefaults({ type: 'object', properties: { a: { type: 'object', properties: { b: {} } } } }, {}),
    ).toEqual({})
  })

  it('validates against every stage and lists all problems in one E_INPUT error', () => {
    const other: ValuesSchema = {
      type: 'object',
      required: ['domain'],
      properties: { domain: { type: 'string' } },
    }
    const schemas = [
      { stage: 'storage', schema: storage },
      { stage: 'web', schema: other },
    ]
    const error = (() => {
      try {
        resolveSiteValues({ nfs: { path: '/x' } }, schemas)
      } catch (e) {
        return e as AirgapError
      }
    })()
    expect(error).toBeInstanceOf(AirgapError)
    expect(error?.code).toBe('E_INPUT')
    expect(error?.data?.problems).toEqual([
      'nfs.server: required (stage storage)',
      'domain: required (stage web)',
    ])
    expect(resolveSiteValues({ nfs: { server: 'nfs.local', path: '/x' }, domain: 'a.b' }, schemas)).toEqual({
      nfs: { server: 'nfs.local', path: '/x', version: 4 },
      replicas: 2,
      domain: 'a.b',
    })
  })

  it('checks the schemas themselves', () => {
    expect(checkValuesSchema({ type: 'obj', propertis: {} }, 'values.schema').problems).toEqual([
      'values.schema: unknown schema keyword "propertis" (did you mean "properties"?); supported: type, description, required, properties, additionalProperties, items, pattern, enum, minimum, maximum, default, generate',
      'values.schema.type: expected one of object, array, string, integer, number, boolean',
    ])
    expect(checkValuesSchema({ type: 'string', pattern: '(' }, 's').problems[0]).toMatch(/^s\.pattern: /)
    expect(checkValuesSchema({ type: 'integer', default: 'x' }, 's').problems).toEqual([
      's.default: expected a whole number, got text "x"',
    ])
    expect(checkValuesSchema(storage, 's')).toEqual({ schema: storage, problems: [] })
    expect(checkValuesSchema({ type: 'string', generate: 'password' }, 's').problems).toEqual([])
    expect(checkValuesSchema({ type: 'integer', generate: 'password' }, 's').problems).toEqual([
      's.generate: only "password", on a value of type string',
    ])
    expect(checkValuesSchema({ type: 'string', generate: 'uuid' }, 's').problems).toEqual([
      's.generate: only "password", on a value of type string',
    ])
  })

  it('parses a values file and refuses anything but a mapping', () => {
    expect(parseSiteValues('nfs:\n  server: 10.0.0.5\n', 'site.yaml')).toEqual({
      nfs: { server: '10.0.0.5' },
    })
    expect(parseSiteValues('', 'site.yaml')).toEqual({})
    expect(() => parseSiteValues('- a\n', 'site.yaml')).toThrow(/expected a mapping/)
    expect(() => parseSiteValues('a: [\n', 'site.yaml')).toThrow(/not valid YAML/)
  })
})

describe('site values: substitution', () => {
  const values = {
    nfs: { server: 'nfs.local', port: 2049 },
    domain: 'site.example',
    tls: true,
    list: ['a', 'b'],
  }
  const sub = (doc: unknown) => {
    const problems: string[] = []
    const out = substituteSiteValues(doc, values, 'manifests/s/a.yaml', problems)
    return { out, problems }
  }

  it('keeps the type of a whole-value reference and inserts text into longer strings', () => {
    expect(
      sub({
        server: '${{ site.nfs.server }}',
        port: '${{site.nfs.port}}',
        tls: '${{ site.tls }}',
        nfs: '${{ site.nfs }}',
        first: '${{ site.list[0] }}',
        url: 'https://${{ site.domain }}:${{ site.nfs.port }}/x',
        untouched: 'no references',
        number: 5,
      }).out,
    ).toEqual({
      server: 'nfs.local',
      port: 2049,
      tls: true,
      nfs: { server: 'nfs.local', port: 2049 },
      first: 'a',
      url: 'https://site.example:2049/x',
      untouched: 'no references',
      number: 5,
    })
  })

  it('substitutes inside lists and leaves keys alone', () => {
    expect(sub({ args: ['--server=${{ site.nfs.server }}'], '${{ site.domain }}': 1 }).out).toEqual({
      args: ['--server=nfs.local'],
      '${{ site.domain }}': 1,
    })
  })

  it('writes a literal ${{ with $${{', () => {
    expect(sub({ script: 'echo $${{ not.a.reference }}' }).out).toEqual({
      script: 'echo ${{ not.a.reference }}',
    })
  })

  it('reports unset values, non-references and mappings inside text, with the field path', () => {
    const { problems } = sub({
      spec: {
        a: '${{ site.nfs.missing }}',
        b: '${{ env.HOME }}',
        c: 'x-${{ site.nfs }}',
        d: ['${{ site.list[7] }}'],
      },
    })
    expect(problems).toEqual([
      'manifests/s/a.yaml spec.a: site.nfs.missing is not set; add it to the site values file',
      'manifests/s/a.yaml spec.b: ${{ env.HOME }} is not a site value reference; write ${{ site.<name>.<name> }} (nothing else is evaluated)',
      'manifests/s/a.yaml spec.c: ${{ site.nfs }} is a mapping; inside longer text only a string, number or boolean can be inserted',
      'manifests/s/a.yaml spec.d[0]: site.list[7] is not set; add it to the site values file',
    ])
  })

  it('does not re-parse inserted values (no injection into the manifest structure)', () => {
    const problems: string[] = []
    const out = substituteSiteValues(
      { data: { v: 'x: ${{ site.evil }}' } },
      { evil: '1\nkind: Secret' },
      'm',
      problems,
    )
    expect(out).toEqual({ data: { v: 'x: 1\nkind: Secret' } })
    expect(problems).toEqual([])
  })
})
