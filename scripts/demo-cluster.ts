/**
 * Starts the demo's Kubernetes cluster: the harness control plane (etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler) with kwok faking three nodes, one of them a GPU node, and the GPU Operator's ClusterPolicy reported
 * ready (test/support/gpu-operator.ts). Writes the kubeconfig path to a file, then
 * runs until it is stopped. Usage: tsx scripts/demo-cluster.ts <kubeconfig-path-file>
 */
import { writeFileSync } from 'node:fs'
import { playGpuOperator } from '../test/support/gpu-operator.js'
import { startControlPlane } from '../test/support/kube.js'

const [pathFile] = process.argv.slice(2)
if (!pathFile) throw new Error('usage: demo-cluster.ts <kubeconfig-path-file>')
const cluster = await startControlPlane()
// No GPU operand runs on kwok nodes: report the ClusterPolicy ready, as the GPU Operator would (the gpu stage waits).
await playGpuOperator(cluster.kubeconfigPath)
writeFileSync(pathFile, `${cluster.kubeconfigPath}\n`)
console.error(
  `demo cluster: Kubernetes ${cluster.version} at ${cluster.server}, nodes ${cluster.nodes.join(', ')}`,
)
const stop = async () => {
  await cluster.stop()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
setInterval(() => {}, 1 << 30)
