import { AirgapError } from '../errors.js'

/**
 * The systemd unit that keeps `serve` running on an admin node: the installer (or this CLI under Node) serving the
 * bundle with the same flags, restarted on failure, started at boot. Pure: text in, text out; writing and enabling
 * it is systemd-service.ts.
 */

export const SERVE_UNIT_NAME = 'astrago-airgap-serve.service'

export interface ServeUnitOptions {
  /** The command line: the executable (absolute) and its arguments, ending with `serve <bundle> <flags…>`. */
  command: string[]
  /** The bundle file (absolute): the unit waits for its file system to be mounted. */
  bundle: string
  /** The base of a delta bundle (absolute): its file system must be mounted too. */
  base?: string
  /** The state folder (absolute): the working directory, and mounted before start. */
  stateDir: string
  /** What `status` probes: the server's /v2/ endpoint as seen from this machine. */
  healthUrl: string
  /** The CA that signs the server's certificate (the site CA), for the probe; none for plain HTTP or a site PKI. */
  caFile?: string
}

/** Comment lines `status` reads back (systemd ignores comments). */
export const UNIT_HEALTH_PREFIX = '# astrago-airgap health-url: '
export const UNIT_CA_PREFIX = '# astrago-airgap ca-file: '

export function renderServeUnit(options: ServeUnitOptions): string {
  const mounts = [...new Set([options.bundle, ...(options.base ? [options.base] : []), options.stateDir])]
    .map(quoteUnitWord)
    .join(' ')
  return [
    '# Written by `astrago-airgap serve --install-service`; removed by `serve --uninstall-service`.',
    `${UNIT_HEALTH_PREFIX}${options.healthUrl}`,
    ...(options.caFile ? [`${UNIT_CA_PREFIX}${options.caFile}`] : []),
    '[Unit]',
    'Description=astrago-airgap site server (OCI registry and file server from the bundle)',
    'After=network-online.target',
    'Wants=network-online.target',
    `RequiresMountsFor=${mounts}`,
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${options.command.map(quoteUnitWord).join(' ')}`,
    `WorkingDirectory=${options.stateDir.replace(/%/g, '%%')}`,
    'Environment=NO_COLOR=1',
    'Restart=on-failure',
    'RestartSec=5s',
    'KillSignal=SIGTERM',
    'TimeoutStopSec=30s',
    'LimitNOFILE=65536',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n')
}

/**
 * One word of a unit file's command line or path list: `%` doubled (specifiers), `$` doubled (variable expansion),
 * and double-quoted with backslash escapes when it holds spaces, quotes, backslashes or `;`. Control characters
 * have no place in a path or flag here and are refused.
 */
export function quoteUnitWord(word: string): string {
  for (const c of word) {
    const code = c.charCodeAt(0)
    if (code < 0x20 || code === 0x7f)
      throw new AirgapError(
        'E_INPUT',
        `${JSON.stringify(word)} holds a control character: it cannot go into a unit file.`,
      )
  }
  const escaped = word.replace(/%/g, '%%').replace(/\$/g, '$$$$')
  if (escaped !== '' && !/[\s"'\\;]/.test(escaped)) return escaped
  return `"${escaped.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}
