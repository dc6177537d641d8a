export { run } from '@oclif/core'
export * from './errors.js'
export * from './events/types.js'
