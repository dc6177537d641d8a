/**
 * Writes docs/events.md from the event catalogues (see scripts/events-doc.ts), or to the file given as the first
 * argument (scripts/test writes to a temporary file and compares). Run it after changing src/events/codes.ts or
 * src/events/task-kinds.ts:  npx tsx scripts/gen-events-doc.ts
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { renderEventsDoc } from './events-doc.js'

const output = process.argv[2] ?? fileURLToPath(new URL('../docs/events.md', import.meta.url))
writeFileSync(output, renderEventsDoc())
