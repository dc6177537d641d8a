// Reads vitest's JSON report (the path given) and prints the closing line that CI and people read:
// "N passed, N failed" (", N skipped" when any were). Exits 0 only when something ran, nothing failed and nothing
// was skipped or left as a todo: in CI a skipped test is a test that did not run, so the run fails.
import { readFileSync } from 'node:fs'

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0)
console.log(
  `${report.numPassedTests} passed, ${report.numFailedTests} failed` +
    (skipped ? `, ${skipped} skipped` : ''),
)
let ok = true
if (report.numTotalTests === 0) {
  console.error('No test ran.')
  ok = false
}
if (report.numFailedTests > 0) ok = false
if (skipped > 0) {
  const names = (report.testResults ?? []).flatMap((file) =>
    (file.assertionResults ?? [])
      .filter((t) => t.status === 'pending' || t.status === 'skipped' || t.status === 'todo')
      .map((t) => `  ${file.name}: ${t.fullName}`),
  )
  console.error(`${skipped} test(s) skipped or todo; every test must run:\n${names.join('\n')}`)
  ok = false
}
process.exit(ok ? 0 : 1)
