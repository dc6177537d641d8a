import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { AirgapError } from '../../../src/errors.js'
import type { ProgressEvent } from '../../../src/events/types.js'
import { INSTALL_LOCK, InstallLock } from '../../../src/stages/install-lock.js'
import { KubeClient } from '../../../src/stages/kube-client.js'
import { type ControlPlane, startControlPlane } from '../../support/kube.js'

/**
 * The install lock against a real API server: a second installer is refused while the first holds the Lease, gets
 * it once the first releases it, takes over a lease whose holder stopped renewing, and of two racing for a free
 * lock exactly one wins.
 */
describe('install lock (a coordination.k8s.io Lease)', () => {
  let cp: ControlPlane
  let client: KubeClient
  const events: ProgressEvent[] = []
  const sink = { emit: (e: ProgressEvent) => void events.push(e) }
  const namespace = 'lock-test'
  const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace, name: INSTALL_LOCK }

  beforeAll(async () => {
    cp = await startControlPlane()
    client = KubeClient.load({ kubeconfig: cp.kubeconfigPath })
    await client.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } })
  }, 120_000)

  afterAll(async () => {
    await cp?.stop()
  })

  const refusal = async (operation: string): Promise<AirgapError> => {
    const error = await InstallLock.acquire(client, namespace, { operation, sink }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(AirgapError)
    return error as AirgapError
  }

  it('refuses a second holder, naming the first, until the first releases it', async () => {
    const first = await InstallLock.acquire(client, namespace, { operation: 'install astrago 1.0.0', sink })
    const stored = await client.get(lease)
    expect(stored?.spec).toMatchObject({ holderIdentity: first.holder, leaseDurationSeconds: 60 })

    const refused = await refusal('install astrago 1.0.1')
    expect(refused.code).toBe('E_CLUSTER')
    expect(refused.message).toContain('install astrago 1.0.0')
    expect(refused.message).toContain(first.holder)
    expect(refused.hints.join('\n')).toMatch(/expires at \d{4}-/)

    await first.release()
    expect(await client.get(lease)).toBeUndefined()
    const second = await InstallLock.acquire(client, namespace, { operation: 'install astrago 1.0.1', sink })
    await second.release()
  })

  it('takes over the lease of a holder that stopped renewing it, and renews its own', async () => {
    const longAgo = new Date(Date.now() - 10 * 60_000).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
    await client.create({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: INSTALL_LOCK,
        namespace,
        annotations: { 'airgap.astrago.io/operation': 'install old' },
      },
      spec: {
        holderIdentity: 'killed-host/1/x',
        leaseDurationSeconds: 60,
        acquireTime: longAgo,
        renewTime: longAgo,
      },
    })
    const lock = await InstallLock.acquire(client, namespace, {
      operation: 'install new',
      sink,
      leaseSeconds: 3,
    })
    expect(events.some((e) => e.type === 'log' && e.code === 'W_LOCK_TAKEN_OVER')).toBe(true)
    const taken = (await client.get(lease))?.spec as { renewTime: string; holderIdentity: string }
    expect(taken.holderIdentity).toBe(lock.holder)
    // Renewed every second (a third of its 3 s): after 2.5 s the renewal time has moved on, and it is still held.
    await new Promise((resolve) => setTimeout(resolve, 2500))
    const renewed = (await client.get(lease))?.spec as { renewTime: string }
    expect(Date.parse(renewed.renewTime)).toBeGreaterThan(Date.parse(taken.renewTime))
    expect((await refusal('install other')).message).toContain('install new')
    await lock.release()
  })

  it('lets exactly one of two racing installers win', async () => {
    const results = await Promise.allSettled([
      InstallLock.acquire(client, namespace, { operation: 'install a', sink }),
      InstallLock.acquire(client, namespace, { operation: 'install b', sink }),
    ])
    const won = results.filter((r) => r.status === 'fulfilled')
    expect(won).toHaveLength(1)
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
    expect((lost.reason as AirgapError).code).toBe('E_CLUSTER')
    await (won[0] as PromiseFulfilledResult<InstallLock>).value.release()
  })

  // Losing the lease: at its next renewal the holder's `lost` signal is aborted with an E_CLUSTER error (an install
  // stops on it before applying anything more); the lease is neither fought over nor deleted on release.
  const lostWithin = async (lock: InstallLock, ms: number): Promise<AirgapError | undefined> => {
    const until = Date.now() + ms
    while (!lock.lost.aborted && Date.now() < until) await new Promise((r) => setTimeout(r, 100))
    return lock.lost.aborted ? (lock.lost.reason as AirgapError) : undefined
  }

  it('is lost when another holder takes the Lease', async () => {
    const lock = await InstallLock.acquire(client, namespace, {
      operation: 'install a',
      sink,
      leaseSeconds: 3,
    })
    const current = (await client.get(lease))!
    const now = new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
    await client.replace({
      ...current,
      metadata: { ...current.metadata, annotations: { 'airgap.astrago.io/operation': 'install b' } },
      spec: { holderIdentity: 'other-host/2/y', leaseDurationSeconds: 60, acquireTime: now, renewTime: now },
    })
    const reason = await lostWithin(lock, 5000)
    expect(reason, 'the lock was not reported lost').toBeInstanceOf(AirgapError)
    expect(reason!.code).toBe('E_CLUSTER')
    expect(reason!.message).toContain('other-host/2/y')
    expect(events.some((e) => e.type === 'log' && e.code === 'W_LOCK_LOST')).toBe(true)
    await lock.release()
    // Not fought over, not deleted: the other holder keeps it.
    const kept = (await client.get(lease))?.spec as { holderIdentity?: string } | undefined
    expect(kept?.holderIdentity).toBe('other-host/2/y')
    await client.delete(lease)
  })

  it('is lost when its Lease is deleted', async () => {
    const lock = await InstallLock.acquire(client, namespace, {
      operation: 'install c',
      sink,
      leaseSeconds: 3,
    })
    await client.delete(lease)
    const reason = await lostWithin(lock, 5000)
    expect(reason?.code).toBe('E_CLUSTER')
    expect(reason?.message).toContain('deleted')
    await lock.release()
  })
})
