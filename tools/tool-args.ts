/**
 * Option parsing for the tools/ scripts: `--help` prints the usage and exits 0; an unknown or
 * malformed option is one line naming it (no stack trace) and exit 2.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function toolArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  tool: string, usage: string, options: O, argv: string[] = process.argv.slice(2),
): ReturnType<typeof parseArgs<{ options: O; strict: true; args: string[] }>>['values'] {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage.trim());
    process.exit(0);
  }
  try {
    return parseArgs({ options, strict: true, args: argv }).values;
  } catch (err) {
    console.error(`${tool}: ${(err as Error).message.split('\n')[0]} (--help lists the options)`);
    process.exit(2);
  }
}

/** `value` as a positive integer, or one line naming `--name` and exit 2. */
export function positiveInt(tool: string, name: string, value: string | undefined): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`${tool}: --${name} must be a positive integer, got "${value}"`);
    process.exit(2);
  }
  return n;
}
