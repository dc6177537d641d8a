import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitFor } from './net.js'
import { ManagedProcess } from './process.js'
import { findTool } from './tools.js'

/**
 * A real Kubernetes control plane for integration tests: etcd, kube-apiserver, kube-controller-manager and
 * kube-scheduler run as local processes on loopback ports, and kwok plays the kubelet of a few fake nodes (it makes
 * their pods Running and Ready, and Job pods Succeeded). Everything the tests touch is real Kubernetes: admission,
 * RBAC, server-side apply, the Deployment/ReplicaSet/Job/DaemonSet/StatefulSet controllers, the scheduler.
 *
 * Identities are set up like kubeadm does: the controller-manager and the scheduler authenticate as
 * system:kube-controller-manager and system:kube-scheduler (bootstrap RBAC), the controller-manager gives each
 * controller its own service account credentials; the test user ("admin") and kwok are in system:masters.
 */

export interface NodeSpec {
  name: string
  /** A GPU node: label `nvidia.com/gpu.present=true` and capacity `nvidia.com/gpu: 8`. */
  gpu?: boolean
  labels?: Record<string, string>
}

export interface ControlPlaneOptions {
  /** The fake nodes; default kwok-node-0, kwok-node-1 (GPU), kwok-node-2. */
  nodes?: NodeSpec[]
  /** Where configuration, certificates, etcd data and logs go; a new temporary directory by default. */
  workDir?: string
}

export interface ControlPlane {
  /** An admin kubeconfig (system:masters), verifying the apiserver against its CA. */
  kubeconfigPath: string
  /** https://127.0.0.1:<port> */
  server: string
  /** The apiserver's gitVersion, e.g. v1.34.4. */
  version: string
  workDir: string
  /** The names of the fake nodes, all Ready. */
  nodes: string[]
  /** Pids of the component processes, by component name (to check that stop() leaves nothing behind). */
  pids: Record<string, number>
  /** How long startControlPlane took, in milliseconds. */
  startupMs: number
  /** Stops every component (last started first) and removes workDir unless KEEP_HARNESS=1. */
  stop(): Promise<void>
}

export const defaultNodes: NodeSpec[] = [
  { name: 'kwok-node-0' },
  { name: 'kwok-node-1', gpu: true },
  { name: 'kwok-node-2' },
]

const serviceAccountIssuer = 'https://kubernetes.default.svc.cluster.local'

interface Credentials {
  server: string
  caFile: string
  token: string
}

export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const started = Date.now()
  const nodes = options.nodes ?? defaultNodes
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'astrago-kube-')))
  await mkdir(workDir, { recursive: true })
  const path = (name: string) => join(workDir, name)

  const processes: ManagedProcess[] = []
  let stopped = false
  const stopAll = async () => {
    if (stopped) return
    stopped = true
    for (const p of [...processes].reverse()) await p.stop()
  }
  const start = (name: string, args: string[], env: NodeJS.ProcessEnv = {}) => {
    const p = new ManagedProcess(name, findTool(name), args, {
      env,
      cwd: workDir,
      logFile: path(`${name}.log`),
    })
    processes.push(p)
    return p
  }

  try {
    // Every binary is looked up before anything starts, so a missing one fails at once with a clear message.
    for (const tool of ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'])
      findTool(tool)
    await Promise.all(
      ['pki', 'etcd-data', 'kwok'].map((d) => mkdir(path(d), { recursive: true, mode: 0o700 })),
    )

    // Identities: static bearer tokens (name, group), and the service-account signing key.
    const tokens = {
      admin: randomToken(),
      controllerManager: randomToken(),
      scheduler: randomToken(),
      kwok: randomToken(),
    }
    await writeFile(
      path('tokens.csv'),
      [
        `${tokens.admin},admin,uid-admin,system:masters`,
        `${tokens.controllerManager},system:kube-controller-manager,uid-kube-controller-manager`,
        `${tokens.scheduler},system:kube-scheduler,uid-kube-scheduler`,
        `${tokens.kwok},kwok,uid-kwok,system:masters`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    )
    const { privateKey, publicKey } = generateKeyPairSync('ec', {
      namedCurve: 'prime256v1',
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    })
    await writeFile(path('pki/sa.key'), privateKey, { mode: 0o600 })
    await writeFile(path('pki/sa.pub'), publicKey)

    // etcd: throwaway data, so fsync is pointless (it only slows every write on a busy machine); a single member
    // has no peer to wait for, so a short election timeout just makes it leader sooner (~0.5 s saved).
    const [etcdPort, etcdPeerPort, apiPort] = await distinctFreePorts(3)
    const etcdUrl = `http://127.0.0.1:${etcdPort}`
    const etcdPeerUrl = `http://127.0.0.1:${etcdPeerPort}`
    const etcd = start('etcd', [
      '--name=harness',
      `--data-dir=${path('etcd-data')}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=${etcdPeerUrl}`,
      `--initial-advertise-peer-urls=${etcdPeerUrl}`,
      `--initial-cluster=harness=${etcdPeerUrl}`,
      '--initial-cluster-state=new',
      '--unsafe-no-fsync=true',
      '--heartbeat-interval=20',
      '--election-timeout=200',
      '--log-level=warn',
    ])
    await waitForComponent('etcd to be healthy', [etcd], () => httpHealthy(`${etcdUrl}/health`), etcd, 30_000)

    // kube-apiserver: secure port on loopback only, a self-signed serving certificate (--cert-dir) whose CA the
    // kubeconfigs trust, static tokens, Node+RBAC authorization, the default admission plugins.
    const server = `https://127.0.0.1:${apiPort}`
    const caFile = path('pki/apiserver.crt')
    const apiserver = start('kube-apiserver', [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      // Advertising loopback keeps the apiserver off every other interface, even in its own certificate; the
      // "kubernetes" Service endpoints cannot hold a loopback address, so nothing reconciles them.
      '--advertise-address=127.0.0.1',
      '--endpoint-reconciler-type=none',
      `--secure-port=${apiPort}`,
      `--cert-dir=${path('pki')}`,
      `--token-auth-file=${path('tokens.csv')}`,
      '--authorization-mode=Node,RBAC',
      `--service-account-issuer=${serviceAccountIssuer}`,
      `--service-account-key-file=${path('pki/sa.pub')}`,
      `--service-account-signing-key-file=${path('pki/sa.key')}`,
      '--service-cluster-ip-range=10.96.0.0/16',
      '--allow-privileged=true',
      '--profiling=false',
    ])
    const admin: Credentials = { server, caFile, token: tokens.admin }
    await waitForComponent(
      'kube-apiserver /readyz',
      [etcd, apiserver],
      async () => existsSync(caFile) && (await api(admin, 'GET', '/readyz')).status === 200,
      apiserver,
      90_000,
    )
    const version = String(JSON.parse((await api(admin, 'GET', '/version')).body).gitVersion)

    // Kubeconfigs: the admin one the tests use, and one per component identity.
    const ca = readFileSync(caFile)
    const kubeconfigPath = path('kubeconfig')
    await writeFile(kubeconfigPath, kubeconfig(server, ca, 'admin', tokens.admin), { mode: 0o600 })
    await writeFile(
      path('kube-controller-manager.kubeconfig'),
      kubeconfig(server, ca, 'system:kube-controller-manager', tokens.controllerManager),
      { mode: 0o600 },
    )
    await writeFile(
      path('kube-scheduler.kubeconfig'),
      kubeconfig(server, ca, 'system:kube-scheduler', tokens.scheduler),
      { mode: 0o600 },
    )
    await writeFile(path('kwok.kubeconfig'), kubeconfig(server, ca, 'kwok', tokens.kwok), { mode: 0o600 })
    await writeFile(path('kwok/stages.yaml'), kwokStages(version))

    // The nodes go in before their kubelet (kwok) starts, like nodes whose kubelet registered and then went quiet.
    for (const [index, node] of nodes.entries()) {
      const created = await api(admin, 'POST', '/api/v1/nodes', nodeObject(node, index))
      if (created.status !== 201)
        throw new Error(`creating node ${node.name}: HTTP ${created.status} ${created.body}`)
    }

    // Controllers and scheduler: no leader election (a single instance; electing only delays the start) and no
    // serving port (nothing scrapes them; it also spares their delegated authentication lookups).
    const controllerManager = start('kube-controller-manager', [
      `--kubeconfig=${path('kube-controller-manager.kubeconfig')}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${path('pki/sa.key')}`,
      `--root-ca-file=${caFile}`,
      // The cloud controllers are skipped anyway without a cloud provider; say so instead of relying on it.
      '--controllers=*,-service-lb-controller,-cloud-node-lifecycle-controller,-node-route-controller',
      '--kube-api-qps=100',
      '--kube-api-burst=200',
      '--profiling=false',
    ])
    const scheduler = start('kube-scheduler', [
      `--kubeconfig=${path('kube-scheduler.kubeconfig')}`,
      '--leader-elect=false',
      '--secure-port=0',
      '--kube-api-qps=100',
      '--kube-api-burst=200',
      '--profiling=false',
    ])
    // kwok: the fake kubelet of the annotated nodes. It renews their leases (so the node lifecycle controller keeps
    // them Ready) and plays the stages in kwok/stages.yaml. No --node-port/--server-address: it serves nothing.
    const kwok = start(
      'kwok',
      [
        `--kubeconfig=${path('kwok.kubeconfig')}`,
        `--config=${path('kwok/stages.yaml')}`,
        '--manage-all-nodes=false',
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        '--node-lease-duration-seconds=40',
        '--cidr=10.244.0.0/16',
      ],
      // kwok also reads ~/.kwok/kwok.yaml; keep it to this harness' configuration.
      { KWOK_WORKDIR: path('kwok') },
    )
    const all = [etcd, apiserver, controllerManager, scheduler, kwok]

    await waitForComponent(
      'the default ServiceAccount in the default namespace',
      all,
      async () =>
        (await api(admin, 'GET', '/api/v1/namespaces/default/serviceaccounts/default')).status === 200,
      controllerManager,
      90_000,
    )
    let notReady: string[] = nodes.map((n) => n.name)
    await waitForComponent(
      `nodes ${nodes.map((n) => n.name).join(', ')} to be Ready and untainted`,
      all,
      async () => {
        const list = await api(admin, 'GET', '/api/v1/nodes')
        if (list.status !== 200) return false
        const items = (JSON.parse(list.body) as { items: NodeStatusView[] }).items
        notReady = nodes
          .map((n) => n.name)
          .filter((name) => !isReadyAndUntainted(items.find((i) => i.metadata.name === name)))
        return notReady.length === 0
      },
      {
        describe: () =>
          `not ready: ${notReady.join(', ')}\n${kwok.describe()}\n${controllerManager.describe()}`,
      },
      90_000,
    )

    const startupMs = Date.now() - started

    const pids: Record<string, number> = {}
    for (const p of processes) if (p.pid !== undefined) pids[p.name] = p.pid
    return {
      kubeconfigPath,
      server,
      version,
      workDir,
      nodes: nodes.map((n) => n.name),
      pids,
      startupMs,
      stop: async () => {
        await stopAll()
        if (process.env.KEEP_HARNESS !== '1') await rm(workDir, { recursive: true, force: true })
      },
    }
  } catch (error) {
    await stopAll()
    const message = error instanceof Error ? error.message : String(error)
    throw new Error(`the Kubernetes control plane did not start (logs in ${workDir}): ${message}`, {
      cause: error,
    })
  }
}

// Waits for `probe`, but fails at once (with that component's last output) when one of `watched` dies; on a
// timeout the error carries `blame`'s last output.
async function waitForComponent(
  what: string,
  watched: ManagedProcess[],
  probe: () => Promise<boolean>,
  blame: { describe: () => string },
  timeoutMs: number,
): Promise<void> {
  let dead: ManagedProcess | undefined
  await waitFor(
    what,
    async () => {
      dead = watched.find((p) => !p.running)
      return dead !== undefined || (await probe())
    },
    { timeoutMs, intervalMs: 100, describe: () => blame.describe() },
  )
  if (dead) throw new Error(`${dead.name} exited while waiting for ${what}\n${dead.describe()}`)
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) ports.add(await freePort())
  return [...ports]
}

function randomToken(): string {
  return randomBytes(24).toString('hex')
}

async function httpHealthy(url: string): Promise<boolean> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) })
  return response.ok
}

/** One request to the apiserver, trusting its CA. */
function api(
  credentials: Credentials,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, credentials.server)
    const payload = body === undefined ? undefined : JSON.stringify(body)
    const req = request(
      url,
      {
        method,
        ca: readFileSync(credentials.caFile),
        headers: {
          authorization: `Bearer ${credentials.token}`,
          accept: 'application/json',
          ...(payload
            ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
            : {}),
        },
        timeout: 5_000,
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        )
        res.on('error', reject)
      },
    )
    req.on('timeout', () => req.destroy(new Error(`${method} ${path} timed out`)))
    req.on('error', reject)
    req.end(payload)
  })
}

function kubeconfig(server: string, ca: Buffer, user: string, token: string): string {
  return `${JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        { name: 'harness', cluster: { server, 'certificate-authority-data': ca.toString('base64') } },
      ],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: 'harness', context: { cluster: 'harness', user, namespace: 'default' } }],
      'current-context': 'harness',
      preferences: {},
    },
    null,
    2,
  )}\n`
}

interface NodeStatusView {
  metadata: { name: string }
  spec?: { taints?: { key: string; effect: string }[] }
  status?: { conditions?: { type: string; status: string }[] }
}

function isReadyAndUntainted(node: NodeStatusView | undefined): boolean {
  if (!node) return false
  const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false
  return ready && (node.spec?.taints ?? []).length === 0
}

/** A node as a kubelet would register it, annotated for kwok; each has its own address and pod CIDR. */
function nodeObject(node: NodeSpec, index: number): object {
  const capacity: Record<string, string> = {
    cpu: '64',
    memory: '512Gi',
    pods: '250',
    'ephemeral-storage': '2Ti',
    ...(node.gpu ? { 'nvidia.com/gpu': '8' } : {}),
  }
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      labels: {
        'kubernetes.io/hostname': node.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'kwok',
        ...(node.gpu ? { 'nvidia.com/gpu.present': 'true' } : {}),
        ...node.labels,
      },
      annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
    },
    spec: { podCIDR: `10.244.${index}.0/24`, podCIDRs: [`10.244.${index}.0/24`] },
    status: {
      capacity,
      allocatable: capacity,
      // Documentation addresses (RFC 5737): nothing connects to them; pods get them as hostIP.
      addresses: [
        { type: 'InternalIP', address: `198.51.100.${10 + index}` },
        { type: 'Hostname', address: node.name },
      ],
    },
  }
}

/**
 * kwok's behaviour, as Stage objects: a node becomes Ready with the standard conditions and keeps its capacity; a
 * pod on a managed node becomes Running and Ready; a Job's pod then Succeeds; a deleted pod goes away at once.
 */
export function kwokStages(kubeletVersion: string): string {
  const stage = (name: string, kind: string, selector: string, next: string, extra = '') =>
    [
      'apiVersion: kwok.x-k8s.io/v1alpha1',
      'kind: Stage',
      `metadata: {name: ${name}}`,
      'spec:',
      `  resourceRef: {apiGroup: v1, kind: ${kind}}`,
      '  selector:',
      '    matchExpressions:',
      indent(selector, 4),
      ...(extra ? [indent(extra, 2)] : []),
      '  next:',
      indent(next, 4),
    ].join('\n')

  const nodeConditions = `
{{ $now := Now }}
{{ $since := or .metadata.creationTimestamp $now }}
conditions:
{{ range NodeConditions }}
- type: {{ .type | Quote }}
  status: {{ .status | Quote }}
  reason: {{ .reason | Quote }}
  message: {{ .message | Quote }}
  lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $since | Quote }}
{{ end }}`

  const nodeInitialize = stage(
    'node-initialize',
    'Node',
    `- key: '.status.conditions.[] | select(.type == "Ready") | .status'
  operator: NotIn
  values: ['True']`,
    template(
      `${nodeConditions}
capacity:
{{ YAML .status.capacity 1 }}
allocatable:
{{ YAML (or .status.allocatable .status.capacity) 1 }}
addresses:
{{ YAML .status.addresses 1 }}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: ${kubeletVersion}
  kubeProxyVersion: ${kubeletVersion}
  containerRuntimeVersion: kwok://{{ Version }}
  kernelVersion: kwok
  osImage: kwok
  bootID: ""
  machineID: ""
  systemUUID: ""
phase: Running`,
    ),
  )

  // With leases renewed by kwok, the status heartbeat only needs to be rare (kubelet updates it every 5 minutes).
  const nodeHeartbeat = stage(
    'node-heartbeat',
    'Node',
    `- key: '.status.phase'
  operator: In
  values: [Running]
- key: '.status.conditions.[] | select(.type == "Ready") | .status'
  operator: In
  values: ['True']`,
    template(nodeConditions),
    'delay: {durationMilliseconds: 300000, jitterDurationMilliseconds: 310000}',
  )

  const podReady = stage(
    'pod-ready',
    'Pod',
    `- key: '.metadata.deletionTimestamp'
  operator: DoesNotExist
- key: '.status.phase'
  operator: In
  values: [Pending]
- key: '.status.conditions.[] | select(.type == "Ready") | .status'
  operator: NotIn
  values: ['True']`,
    template(
      `{{ $now := Now }}
phase: Running
startTime: {{ $now | Quote }}
conditions:
{{ range list "PodReadyToStartContainers" "Initialized" "ContainersReady" "Ready" }}
- type: {{ . }}
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
{{ end }}
{{ range .spec.readinessGates }}
- type: {{ .conditionType | Quote }}
  status: "True"
  lastTransitionTime: {{ $now | Quote }}
{{ end }}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  imageID: {{ printf "kwok://%s" .image | Quote }}
  ready: true
  started: true
  restartCount: 0
  state: {running: {startedAt: {{ $now | Quote }}}}
{{ end }}
initContainerStatuses:
{{ range .spec.initContainers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: true
  restartCount: 0
{{ if eq (or .restartPolicy "") "Always" }}
  started: true
  state: {running: {startedAt: {{ $now | Quote }}}}
{{ else }}
  started: false
  state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}
{{ end }}
{{ end }}
{{ with NodeIPsWith .spec.nodeName }}
hostIP: {{ index . 0 | Quote }}
hostIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}
{{ with PodIPsWith .spec.nodeName (or .spec.hostNetwork false) (or .metadata.uid "") (or .metadata.name "") (or .metadata.namespace "") }}
podIP: {{ index . 0 | Quote }}
podIPs:
{{ range . }}
- ip: {{ . | Quote }}
{{ end }}
{{ end }}`,
    ),
  )

  const podComplete = stage(
    'pod-complete',
    'Pod',
    `- key: '.metadata.deletionTimestamp'
  operator: DoesNotExist
- key: '.status.phase'
  operator: In
  values: [Running]
- key: '.metadata.ownerReferences.[].kind'
  operator: In
  values: [Job]`,
    template(
      `{{ $now := Now }}
phase: Succeeded
conditions:
- {type: Ready, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }}}
- {type: ContainersReady, status: "False", reason: PodCompleted, lastTransitionTime: {{ $now | Quote }}}
containerStatuses:
{{ range .spec.containers }}
- name: {{ .name | Quote }}
  image: {{ .image | Quote }}
  ready: false
  started: false
  restartCount: 0
  state: {terminated: {exitCode: 0, reason: Completed, startedAt: {{ $now | Quote }}, finishedAt: {{ $now | Quote }}}}
{{ end }}`,
    ),
  )

  const podDelete = stage(
    'pod-delete',
    'Pod',
    `- key: '.metadata.deletionTimestamp'
  operator: Exists`,
    'delete: true',
  )

  return `${[nodeInitialize, nodeHeartbeat, podReady, podComplete, podDelete].join('\n---\n')}\n`
}

function template(text: string): string {
  return `statusTemplate: |\n${indent(text.trim(), 2)}`
}

function indent(text: string, spaces: number): string {
  const pad = ' '.repeat(spaces)
  return text
    .split('\n')
    .map((line) => (line ? pad + line : line))
    .join('\n')
}
