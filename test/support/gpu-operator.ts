import * as k8s from '@kubernetes/client-node'

/**
 * The NVIDIA GPU Operator's part that the harness plays: the ClusterPolicy CRD and, for a whole-platform install on
 * kwok nodes (where no operand can really run), the ClusterPolicy `cluster-policy` reporting status.state ready, as
 * the operator does once every operand runs. The gpu stage waits for that state (manifests/astrago/gpu/stage.yaml).
 */
export const CLUSTER_POLICY_CRD = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: 'clusterpolicies.nvidia.com' },
  spec: {
    group: 'nvidia.com',
    scope: 'Cluster',
    names: {
      plural: 'clusterpolicies',
      singular: 'clusterpolicy',
      kind: 'ClusterPolicy',
      listKind: 'ClusterPolicyList',
    },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        subresources: { status: {} },
        // Typed as the client's model: its serializer writes x-kubernetes-preserve-unknown-fields from this name.
        schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } },
      },
    ],
  },
}

/** Creates the ClusterPolicy CRD and waits until it is Established. */
export async function createClusterPolicyCrd(kc: k8s.KubeConfig): Promise<void> {
  const extensions = kc.makeApiClient(k8s.ApiextensionsV1Api)
  await extensions.createCustomResourceDefinition({
    body: CLUSTER_POLICY_CRD as k8s.V1CustomResourceDefinition,
  })
  for (let i = 0; ; i++) {
    const crd = await extensions.readCustomResourceDefinition({ name: CLUSTER_POLICY_CRD.metadata.name })
    if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) return
    if (i > 300) throw new Error('the ClusterPolicy CRD did not become Established')
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** Sets the ClusterPolicy's status.state, as the operator reports it (merge patch of the status subresource). */
export async function setClusterPolicyState(kc: k8s.KubeConfig, state: string): Promise<void> {
  await kc.makeApiClient(k8s.CustomObjectsApi).patchClusterCustomObjectStatus(
    {
      group: 'nvidia.com',
      version: 'v1',
      plural: 'clusterpolicies',
      name: 'cluster-policy',
      body: { status: { state, namespace: 'gpu-operator' } },
    },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  )
}

/** The CRD, the ClusterPolicy cluster-policy, and its status ready. */
export async function playGpuOperator(kubeconfigPath: string): Promise<void> {
  const kc = new k8s.KubeConfig()
  kc.loadFromFile(kubeconfigPath)
  await createClusterPolicyCrd(kc)
  await kc.makeApiClient(k8s.CustomObjectsApi).createClusterCustomObject({
    group: 'nvidia.com',
    version: 'v1',
    plural: 'clusterpolicies',
    body: {
      apiVersion: 'nvidia.com/v1',
      kind: 'ClusterPolicy',
      metadata: { name: 'cluster-policy' },
      spec: {},
    },
  })
  await setClusterPolicyState(kc, 'ready')
}
