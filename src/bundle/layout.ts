/**
 * Every path inside a bundle file, in one place. A bundle is a plain tar holding:
 *   bundle.json                 metadata, the lock and the inventory (path, size, sha256 of every other member)
 *   bundle.json.sig             a detached OpenPGP signature of bundle.json (gpgv checks it)
 *   installer                   the CLI as one executable (mode 0755) for sites without Node (optional)
 *   oci/oci-layout, index.json  a standard OCI image layout (skopeo/crane/oras read it with the oci: transport)
 *   oci/blobs/sha256/<hex>      every manifest, config and layer, once
 *   charts/index.yaml, *.tgz    a Helm chart repository
 *   files/<path>                extra files (binaries, dashboards, theme jars)
 *   repo/<kind>/<name>/…        package repositories (apt, rpm): signed metadata and the package files
 *   manifests/<stage>/…         the install stages
 */
export const BUNDLE_JSON = 'bundle.json'
/** The detached OpenPGP signature of bundle.json: the second member, right after what it signs. */
export const BUNDLE_SIGNATURE = 'bundle.json.sig'
export const OCI_LAYOUT_FILE = 'oci/oci-layout'
export const OCI_INDEX = 'oci/index.json'
export const CHARTS_INDEX = 'charts/index.yaml'
/** The self-contained installer: right after bundle.json and its signature, so `tar -xf bundle.tar installer` finds it at once. */
export const INSTALLER = 'installer'

/** The file scripts/build-installer writes for an architecture (amd64, arm64): astrago-airgap-linux-<arch>. */
export function installerFileName(arch: string): string {
  return `astrago-airgap-linux-${arch}`
}

export function blobPath(digest: string): string {
  const [algorithm, hex] = digest.split(':')
  return `oci/blobs/${algorithm}/${hex}`
}

export function chartPath(name: string, version: string): string {
  return `charts/${chartFileName(name, version)}`
}

export function chartFileName(name: string, version: string): string {
  return `${name}-${version}.tgz`
}

export function filePath(path: string): string {
  return `files/${path}`
}

/** The folder of a package repository in the bundle (and under /repo/ on the site server). */
export function packageRepositoryPath(kind: string, name: string): string {
  return `repo/${kind}/${name}`
}

export function stageFilePath(stage: string, relative: string): string {
  return `manifests/${stage}/${relative}`
}

/** The repository under which a chart is served as an OCI artifact (helm pull oci://<registry>/charts/<name>). */
export function chartRepository(name: string): string {
  return `charts/${name}`
}

/** Default bundle file name: <name>-<version>.tar */
export function defaultBundleFileName(name: string, version: string, baseVersion?: string): string {
  return baseVersion === undefined ? `${name}-${version}.tar` : `${name}-${version}-from-${baseVersion}.tar`
}
