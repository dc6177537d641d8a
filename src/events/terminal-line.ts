/**
 * One line of the live task tree, made safe for a terminal: text from the core becomes plain printable characters,
 * and a finished line is cut to the terminal's width in cells (a CJK character or an emoji takes two) without
 * cutting through a colour code or leaving a colour open for the lines below.
 */
import cliTruncate from 'cli-truncate'
import stringWidth from 'string-width'
import stripAnsi from 'strip-ansi'

const RESET = '\u001b[0m'

/**
 * Cuts `line` (which may hold SGR colour codes) to at most `columns` terminal cells, ending with '…' when cut. A line
 * that holds any escape code ends with a reset, so whatever the cut, the next line starts with no colour.
 */
export function fitLine(line: string, columns: number): string {
  const limit = Math.max(1, Math.floor(columns))
  let fitted = line
  // cli-truncate 5 can overshoot by one cell when the cut falls inside a wide character (fixed upstream only for
  // Node 22): cut one cell shorter until the result fits.
  for (let target = limit; stringWidth(fitted) > limit && target > 0; target -= 1)
    fitted = cliTruncate(line, target, { position: 'end', truncationCharacter: '…' })
  if (stringWidth(fitted) > limit) fitted = '…'
  return line.includes('\u001b') ? `${fitted}${RESET}` : fitted
}

/** The fewest cells a title keeps when `fitParts` cuts it to keep a line's tail in view. */
const MIN_TITLE_CELLS = 12

/**
 * Fits `head` + `title` + `tail` in `columns` cells by cutting the title first, so what follows it (a progress bar, a
 * duration, an outcome) stays in view; the title keeps at least a few cells, and when even that does not leave room,
 * the line is cut at its end. `title` must be plain text (see `printable`).
 */
export function fitParts(head: string, title: string, tail: string, columns: number): string {
  const titleCells = cellWidth(title)
  const room = Math.max(columns - cellWidth(head) - cellWidth(tail), Math.min(MIN_TITLE_CELLS, titleCells))
  return fitLine(`${head}${titleCells > room ? fitLine(title, room) : title}${tail}`, columns)
}

/**
 * Text from the core (task titles, messages, logs) as one run of printable characters: escape sequences are
 * removed and other control characters (newline, tab, carriage return, bell...) become spaces. Titles can hold names
 * read from a bundle, which must not move the cursor, change colours or add lines the renderer does not count.
 */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are exactly what is replaced
  return stripAnsi(text).replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ')
}

/** The width of `text` in terminal cells, escape codes not counted. */
export function cellWidth(text: string): number {
  return stringWidth(text)
}
