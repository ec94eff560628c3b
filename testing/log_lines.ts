/**
 * The JSON log lines a child process writes (one object per line, as
 * services/shared/log.ts writes them), collected as they are read from its
 * output streams.
 */

/** One log line; a line that is not JSON is kept as its `msg`. */
export interface LogLine {
  level?: string;
  msg?: string;
  [field: string]: unknown;
}

export interface LogLines {
  /** Every line read so far, parsed. */
  logs: LogLine[];
  /** Every line as written (an unterminated last one too, once its stream ends). */
  raw: string[];
  /** Calls `watcher` with each line read from now on, as soon as it is read. */
  watch(watcher: (line: LogLine) => void): void;
  /** Resolves when every stream has ended. */
  ended: Promise<void>;
}

export function collectLogLines(...streams: ReadableStream<Uint8Array>[]): LogLines {
  const logs: LogLine[] = [];
  const raw: string[] = [];
  const watchers: ((line: LogLine) => void)[] = [];
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      let newline;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.trim() === "") continue;
        raw.push(line);
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line);
        } catch {
          parsed = { msg: line };
        }
        logs.push(parsed);
        for (const watcher of watchers) watcher(parsed);
      }
    }
    if (pending.trim() !== "") raw.push(pending);
  };
  const ended = Promise.all(streams.map(collect)).then(() => {});
  return { logs, raw, watch: (watcher) => watchers.push(watcher), ended };
}
