/** Logging hook used by server and node: structured, synchronous, never throws into callers. */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** Receives one event; `data` holds machine-readable details (node id, round, error code...). */
export type Logger = (level: LogLevel, message: string, data?: Record<string, unknown>) => void;

/** Discards everything. */
export const silentLogger: Logger = () => {};

/** Writes info and above to stderr as one line each. */
export const consoleLogger: Logger = (level, message, data) => {
  if (level === 'debug') return;
  process.stderr.write(`[${new Date().toISOString()}] ${level} ${message}${data ? ' ' + JSON.stringify(data) : ''}\n`);
};

/** Call `log` but swallow its exceptions: a faulty hook must not break the protocol. */
export function safeLog(log: Logger, level: LogLevel, message: string, data?: Record<string, unknown>): void {
  try {
    log(level, message, data);
  } catch {
    /* ignore */
  }
}
