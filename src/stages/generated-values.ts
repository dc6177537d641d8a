import { randomBytes } from 'node:crypto'
import { AirgapError } from '../errors.js'
import type { KubeClient } from './kube-client.js'
import type { Stage } from './load-stages.js'
import { isPlainObject } from './objects.js'
import type { ValuesSchema } from './site-values.js'

/**
 * Site values the installer generates: every string a stage's schema marks `generate: password` and the site values
 * leave out gets a random password, the first time only. It is kept in the Secret astrago-airgap-generated in the
 * installer's namespace (one key per value path) and reused by every later run, so a rerun sees the same values and
 * resumes instead of re-applying. No site ever runs with a default password, and a password is never written to a
 * log or an event: the install command shows a new one once, and `kubectl get secret` shows it afterwards.
 */
export const GENERATED_SECRET = 'astrago-airgap-generated'

export interface GeneratedValue {
  /** The value's path in the site values, e.g. mariadb.rootPassword */
  path: string
  /** True when this run generated it (it was not in the Secret). */
  created: boolean
  /** The value itself: for the command to show once; never put it in events. */
  readonly value: string
}

/** Paths of the values the stages' schemas mark `generate: password`. */
export function generatedPaths(stages: Stage[]): string[][] {
  const paths = new Map<string, string[]>()
  const visit = (schema: ValuesSchema, path: string[]) => {
    if (schema.generate === 'password') paths.set(path.join('.'), path)
    for (const [key, child] of Object.entries(schema.properties ?? {})) visit(child, [...path, key])
  }
  for (const stage of stages) if (stage.schema) visit(stage.schema, [])
  return [...paths.values()]
}

function getPath(values: Record<string, unknown>, path: string[]): unknown {
  let current: unknown = values
  for (const key of path) current = isPlainObject(current) ? current[key] : undefined
  return current
}

function setPath(values: Record<string, unknown>, path: string[], value: string): void {
  let current = values
  for (const key of path.slice(0, -1)) {
    if (!isPlainObject(current[key])) current[key] = {}
    current = current[key] as Record<string, unknown>
  }
  current[path.at(-1)!] = value
}

export function newPassword(): string {
  return randomBytes(18).toString('base64url')
}

/**
 * Fills the generated values the site values leave out: from the Secret when a client is given and it holds them,
 * else new ones. Returns the completed values (the input is not changed) and what was filled.
 */
export async function fillGeneratedValues(options: {
  stages: Stage[]
  siteValues: Record<string, unknown>
  client?: KubeClient
  namespace: string
  signal?: AbortSignal
}): Promise<{ values: Record<string, unknown>; generated: GeneratedValue[] }> {
  const paths = generatedPaths(options.stages)
  const values = structuredClone(options.siteValues)
  if (!paths.length) return { values, generated: [] }
  const stored = options.client
    ? await options.client.get(
        { apiVersion: 'v1', kind: 'Secret', namespace: options.namespace, name: GENERATED_SECRET },
        options.signal,
      )
    : undefined
  const data = (stored as { data?: Record<string, string> } | undefined)?.data ?? {}
  const generated: GeneratedValue[] = []
  for (const path of paths) {
    if (getPath(values, path) !== undefined) continue
    const key = path.join('.')
    const kept = data[key] === undefined ? undefined : Buffer.from(data[key], 'base64').toString('utf8')
    const value = kept ?? newPassword()
    setPath(values, path, value)
    generated.push(
      Object.defineProperty({ path: key, created: kept === undefined }, 'value', {
        value,
        enumerable: false,
      }) as GeneratedValue,
    )
  }
  return { values, generated }
}

/** Stores generated values in the Secret (server-side apply; the namespace must exist). */
export async function saveGeneratedValues(
  client: KubeClient,
  namespace: string,
  generated: GeneratedValue[],
  signal?: AbortSignal,
): Promise<void> {
  if (!generated.some((g) => g.created)) return
  // Every generated value goes in each apply: server-side apply drops the keys this manager no longer sends.
  try {
    await client.apply(
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: {
          name: GENERATED_SECRET,
          namespace,
          labels: { 'app.kubernetes.io/managed-by': 'astrago-airgap' },
        },
        type: 'Opaque',
        data: Object.fromEntries(generated.map((g) => [g.path, Buffer.from(g.value).toString('base64')])),
      } as never,
      signal,
    )
  } catch (error) {
    throw new AirgapError(
      'E_CLUSTER',
      `Could not store the generated site values in Secret ${namespace}/${GENERATED_SECRET}.`,
      {
        cause: error,
        hints: ['The installer needs to create Secrets in its namespace.'],
      },
    )
  }
}
