/**
 * An operator-fixable problem found while starting a server or node: a corrupt checkpoint, a
 * bad token file, a missing TLS file, a port in use. The message is one line that names the
 * file (or port) and what is wrong; the CLI prints it without a stack trace.
 */
export class StartupError extends Error {
  override name = 'StartupError';
}

/** `e`'s message on one line (errno codes kept, stack dropped). */
export function oneLine(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const msg = (err instanceof Error ? err.message : String(e)).replace(/\s*\n\s*/g, ' ').trim();
  return err?.code && !msg.includes(err.code) ? `${err.code}: ${msg}` : msg;
}
