import { Flags } from '@oclif/core'

/**
 * Reusable flags, built once. The flags that parse their value (KEY=VALUE, sizes, --set) live in flag-key-value.ts,
 * flag-size.ts and flag-set.ts and are re-exported here.
 */

export { mirrorFlag, mirrorKeyringFlag, parseKeyValue, usernameFlag } from './flag-key-value.js'
export { setFlag } from './flag-set.js'
export { parseSize, splitSizeFlag } from './flag-size.js'

export const concurrencyFlag = Flags.integer({
  char: 'j',
  description: 'Parallel downloads.',
  default: 8,
  min: 1,
  max: 64,
})

export const insecureRegistryFlag = Flags.string({
  description: 'Talk to this registry host over plain HTTP / without TLS verification. Repeatable.',
  multiple: true,
  helpValue: 'HOST[:PORT]',
})

export const caFileFlag = Flags.string({
  description: 'Trust the CA certificates in this PEM file (corporate mirrors). Repeatable.',
  multiple: true,
})

export const keyFlag = Flags.string({
  description:
    'A trusted public key file (binary or ASCII-armoured OpenPGP): bundle.json must be signed by it. Repeatable: any of the keys given may have signed.',
  multiple: true,
  helpValue: 'FILE',
})

export const baseFlag = Flags.string({
  description:
    'The bundle a delta bundle was made on (its file, first volume or folder): the delta is read together with it, as the full bundle.',
  helpValue: 'BUNDLE',
})
