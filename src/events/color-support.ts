/**
 * Whether the terminal renderer uses colour, decided from the environment the way most command-line tools do:
 * FORCE_COLOR wins when set (FORCE_COLOR=0 or false turns colour off, any other value turns it on, even when the
 * output is not a terminal), then NO_COLOR set to a non-empty value turns it off (https://no-color.org), then
 * TERM=dumb; otherwise colour follows whether the output is a terminal.
 */
export function colorEnabled(env: NodeJS.ProcessEnv, isTTY: boolean): boolean {
  const force = env.FORCE_COLOR
  if (force !== undefined) return !['0', 'false'].includes(force.trim().toLowerCase())
  if (env.NO_COLOR) return false
  if (env.TERM === 'dumb') return false
  return isTTY
}
