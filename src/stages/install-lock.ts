import { randomUUID } from 'node:crypto'
import { hostname } from 'node:os'
import { AirgapError } from '../errors.js'
import { type EventSink, logEvent } from '../events/types.js'
import { clusterError, KubeApiError, type KubeClient } from './kube-client.js'
import type { KubeObject } from './objects.js'

/**
 * One installer at a time per cluster and installer namespace: a coordination.k8s.io Lease,
 * `<namespace>/astrago-airgap-lock`, taken before the state is read and held (renewed every LEASE_SECONDS / 3) until
 * the install or uninstall ends. A second run finds it held and stops at once, saying by whom and since when. A
 * holder that was killed stops renewing; its lease expires LEASE_SECONDS after the last renewal and the next run
 * takes it over. Writes are conditional (create, or replace at the read resourceVersion), so two runs racing for it
 * cannot both win.
 */
export const INSTALL_LOCK = 'astrago-airgap-lock'
export const LEASE_SECONDS = 60

const LEASE_API = 'coordination.k8s.io/v1'

/** Kubernetes MicroTime: RFC 3339 with six fractional digits. */
function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z')
}

interface LeaseSpec {
  holderIdentity?: string
  leaseDurationSeconds?: number
  acquireTime?: string
  renewTime?: string
}

export interface LockOptions {
  /** What the holder does, shown to a second run: "install astrago 1.0.0". */
  operation: string
  sink: EventSink
  signal?: AbortSignal
  /** For tests: the lease duration in seconds. */
  leaseSeconds?: number
  /** How the error of a lost lock words what the holder stopped and how to go on (default: neutral wording). */
  lostWording?: LostWording
}

/**
 * The holder's part of the lost error: "Stopped before <stopped> anything more, …" and "…; when none is, <rerun>."
 * An install says { stopped: 'applying', rerun: 'run the install again to resume' }.
 */
export interface LostWording {
  stopped: string
  rerun: string
}

const NEUTRAL_WORDING: LostWording = { stopped: 'changing', rerun: 'run it again' }

export class InstallLock {
  private timer: NodeJS.Timeout | undefined
  private lease: KubeObject
  private readonly lostController = new AbortController()
  /** When the lease was last written by this holder (ms since the epoch). */
  private renewedAt = Date.now()
  private renewing = false
  /**
   * Aborted, with an E_CLUSTER AirgapError as its reason, when this holder loses the lease: another holder took it,
   * it was deleted, or renewals failed for longer than the lease lasts. The install or uninstall stops on it before
   * it changes anything more, since another installer may now be running.
   */
  readonly lost: AbortSignal = this.lostController.signal

  private constructor(
    private readonly client: KubeClient,
    lease: KubeObject,
    readonly holder: string,
    private readonly options: LockOptions,
  ) {
    this.lease = lease
    const seconds = options.leaseSeconds ?? LEASE_SECONDS
    this.timer = setInterval(() => void this.renew(), (seconds * 1000) / 3)
    this.timer.unref()
  }

  static async acquire(client: KubeClient, namespace: string, options: LockOptions): Promise<InstallLock> {
    const holder = `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`
    const seconds = options.leaseSeconds ?? LEASE_SECONDS
    const ref = { apiVersion: LEASE_API, kind: 'Lease', namespace, name: INSTALL_LOCK }
    const mine = (resourceVersion?: string): KubeObject => {
      const now = microTime(new Date())
      return {
        apiVersion: LEASE_API,
        kind: 'Lease',
        metadata: {
          name: INSTALL_LOCK,
          namespace,
          ...(resourceVersion ? { resourceVersion } : {}),
          labels: { 'app.kubernetes.io/managed-by': 'astrago-airgap' },
          annotations: { 'airgap.astrago.io/operation': options.operation },
        },
        spec: { holderIdentity: holder, leaseDurationSeconds: seconds, acquireTime: now, renewTime: now },
      }
    }
    try {
      for (let attempt = 0; attempt < 3; attempt++) {
        const existing = await client.get(ref, options.signal)
        try {
          if (!existing)
            return new InstallLock(client, await client.create(mine(), options.signal), holder, options)
          const spec = (existing.spec ?? {}) as LeaseSpec
          const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '') || 0
          const expires = renewed + (spec.leaseDurationSeconds ?? seconds) * 1000
          if (spec.holderIdentity && expires > Date.now()) throw held(existing, spec, expires)
          if (spec.holderIdentity)
            options.sink.emit({
              type: 'log',
              level: 'warn',
              code: 'W_LOCK_TAKEN_OVER',
              message: `Taking over the install lock of ${spec.holderIdentity} (${existing.metadata.annotations?.['airgap.astrago.io/operation'] ?? 'unknown operation'}), which stopped renewing it at ${spec.renewTime}: that run was interrupted.`,
              data: { holder: spec.holderIdentity, renewTime: spec.renewTime },
            })
          const version = existing.metadata.resourceVersion as string | undefined
          return new InstallLock(client, await client.replace(mine(version), options.signal), holder, options)
        } catch (error) {
          // Someone else created or changed it between our read and write: read again.
          if (error instanceof KubeApiError && error.status === 409) continue
          throw error
        }
      }
    } catch (error) {
      throw clusterError(error, `taking the install lock ${namespace}/${INSTALL_LOCK}`, client.server)
    }
    throw new AirgapError(
      'E_CLUSTER',
      `Could not take the install lock ${namespace}/${INSTALL_LOCK}: it kept changing.`,
      {
        hints: ['Another installer is starting at the same time; run again when it has finished.'],
      },
    )
  }

  /**
   * Extends the lease. A lease someone else took, or deleted, is not fought over: the lock is lost. A renewal that
   * fails otherwise is retried at the next tick, until the lease would have expired: then the lock is lost too.
   */
  private async renew(): Promise<void> {
    if (this.renewing || this.lost.aborted || !this.timer) return
    this.renewing = true
    const seconds = this.options.leaseSeconds ?? LEASE_SECONDS
    try {
      const spec = { ...((this.lease.spec ?? {}) as LeaseSpec), renewTime: microTime(new Date()) }
      this.lease = await this.client.replace({ ...this.lease, spec }, this.options.signal)
      this.renewedAt = Date.now()
    } catch (error) {
      // Stopped meanwhile (the caller's signal, or letGo): a failed renewal is then no lost lock.
      if (this.options.signal?.aborted || !this.timer) return
      if (error instanceof KubeApiError && (error.status === 409 || error.status === 404)) {
        const current = await this.client.get(this.ref(), this.options.signal).catch(() => undefined)
        const holder = (current?.spec as LeaseSpec | undefined)?.holderIdentity
        if (current && holder === this.holder) {
          this.lease = current
          return
        }
        this.lose(
          current
            ? `another run took it: ${holder ?? 'no holder'} (${current.metadata.annotations?.['airgap.astrago.io/operation'] ?? 'unknown operation'})`
            : 'its Lease was deleted',
        )
        return
      }
      if (Date.now() - this.renewedAt >= seconds * 1000) {
        this.lose(
          `it could not be renewed for ${seconds} s, so another run may have taken it (${(error as Error).message})`,
        )
        return
      }
      this.options.sink.emit({
        type: 'log',
        level: 'warn',
        code: 'W_LOCK_RENEW',
        message: `Could not renew the install lock (retrying): ${(error as Error).message}`,
      })
    } finally {
      this.renewing = false
    }
  }

  private ref() {
    return {
      apiVersion: LEASE_API,
      kind: 'Lease',
      namespace: this.lease.metadata.namespace,
      name: INSTALL_LOCK,
    }
  }

  private lose(why: string): void {
    clearInterval(this.timer)
    this.timer = undefined
    const where = `${this.lease.metadata.namespace}/${INSTALL_LOCK}`
    const wording = this.options.lostWording ?? NEUTRAL_WORDING
    const error = new AirgapError(
      'E_CLUSTER',
      `Lost the install lock ${where}: ${why}. Stopped before ${wording.stopped} anything more, since another installer may be running.`,
      {
        hints: [
          `Check with \`astrago-airgap status\` whether another install or uninstall is running; when none is, ${wording.rerun}.`,
        ],
        data: { lock: where, holder: this.holder },
      },
    )
    this.options.sink.emit(logEvent('W_LOCK_LOST', error.message, { lock: where, holder: this.holder }))
    this.lostController.abort(error)
  }

  /**
   * Stops renewing the lease and watching it, without giving it up: for a holder about to delete the namespace the
   * Lease lives in (an uninstall removing the installer's namespace), so that the Lease going with it is not taken
   * for a lost lock. The lease stays held until it expires or `release` deletes it.
   */
  letGo(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Gives the lock up (deletes the lease if it is still ours). */
  async release(): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    if (this.lost.aborted) return
    try {
      const ref = this.ref()
      const current = await this.client.get(ref)
      if ((current?.spec as LeaseSpec | undefined)?.holderIdentity === this.holder)
        await this.client.delete(ref)
    } catch (error) {
      this.options.sink.emit({
        type: 'log',
        level: 'warn',
        code: 'W_LOCK_RELEASE',
        message: `Could not release the install lock (it expires ${this.options.leaseSeconds ?? LEASE_SECONDS} s after its last renewal): ${(error as Error).message}`,
      })
    }
  }
}

function held(lease: KubeObject, spec: LeaseSpec, expires: number): AirgapError {
  const operation = lease.metadata.annotations?.['airgap.astrago.io/operation'] ?? 'an install'
  const where = `${lease.metadata.namespace}/${INSTALL_LOCK}`
  return new AirgapError(
    'E_CLUSTER',
    `Another astrago-airgap run holds this cluster's install lock: ${operation}, by ${spec.holderIdentity}, since ${spec.acquireTime} (renewed ${spec.renewTime}).`,
    {
      hints: [
        'Wait for it to finish, then run again.',
        `If that run was killed, its lock expires at ${new Date(expires).toISOString()} (the Lease ${where}); run again after that.`,
      ],
      data: { holder: spec.holderIdentity, operation, expires: new Date(expires).toISOString() },
    },
  )
}
