#!/usr/bin/env node
import '../dist/cli/start-settings.js'
import { execute } from '@oclif/core'

await execute({ dir: import.meta.url })
