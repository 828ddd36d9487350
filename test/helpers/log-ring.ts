// Keeps the last lines a child process wrote, bounded in lines and bytes, so a chatty
// Envoy at debug level cannot grow a test worker's memory without limit. What it keeps
// is what a failing test prints.

export interface LogRingLimits {
  maxLines: number;
  maxBytes: number;
}

// A single line longer than this (a config dump logged at debug) is cut, so one line
// cannot push every other line out of the ring.
const maxLineChars = 16 * 1024;

export const defaultLogLimits: LogRingLimits = { maxLines: 200, maxBytes: 256 * 1024 };

export class LogRing {
  private readonly lines: string[] = [];
  private bytes = 0;
  private dropped = 0;
  // Each stream keeps its own unfinished line, so stdout and stderr never splice.
  private readonly partial = new Map<string, string>();

  constructor(private readonly limits: LogRingLimits = defaultLogLimits) {}

  /** Appends a chunk from `stream`; only complete lines enter the ring until flush(). */
  write(stream: string, chunk: string): void {
    const text = (this.partial.get(stream) ?? '') + chunk;
    const parts = text.split('\n');
    this.partial.set(stream, parts.pop() ?? '');
    for (const line of parts) this.push(line);
  }

  /** Moves unfinished lines into the ring (when the process has exited). */
  flush(): void {
    for (const [stream, rest] of this.partial) {
      if (rest !== '') this.push(rest);
      this.partial.set(stream, '');
    }
  }

  /** The kept lines (and any unfinished ones), oldest first, with a note on dropped lines. */
  text(lastLines = this.limits.maxLines): string {
    const pending = [...this.partial.values()].filter((rest) => rest !== '');
    const all = [...this.lines, ...pending];
    const shown = all.slice(-lastLines);
    const hidden = this.dropped + all.length - shown.length;
    const note = hidden > 0 ? [`[... ${hidden} earlier lines not shown]`] : [];
    return [...note, ...shown].join('\n');
  }

  private push(line: string): void {
    const kept = line.length > maxLineChars ? `${line.slice(0, maxLineChars)} [line truncated]` : line;
    this.lines.push(kept);
    this.bytes += Buffer.byteLength(kept) + 1;
    while (this.lines.length > this.limits.maxLines || this.bytes > this.limits.maxBytes) {
      const oldest = this.lines.shift();
      if (oldest === undefined) break;
      this.bytes -= Buffer.byteLength(oldest) + 1;
      this.dropped++;
    }
  }
}
