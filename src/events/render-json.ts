import type { EventSink, ProgressEvent } from './types.js'

/** NDJSON: one JSON object per line, each event with its time, for automation (`--json`). */
export class JsonRenderer implements EventSink {
  constructor(private readonly write: (line: string) => void) {}

  emit(event: ProgressEvent): void {
    this.write(JSON.stringify({ time: new Date().toISOString(), ...event }))
  }
}
