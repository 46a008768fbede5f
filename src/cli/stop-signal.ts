/**
 * Ctrl-C (SIGINT) and SIGTERM for long commands: the first signal asks the work loop to stop at the
 * next safe point (so it can save its state and say where); a second one exits at once (code 130),
 * for an operator who does not want to wait for the save.
 *
 *   const stop = new StopSignal('train');
 *   while (!stop.requested && ...) { ... }
 *   stop.dispose();
 */
export class StopSignal {
  private signal: NodeJS.Signals | undefined;
  private readonly onSignal = (sig: NodeJS.Signals) => {
    if (this.signal) {
      console.error(`asyndgan ${this.command}: second ${sig}, exiting without waiting for the save`);
      process.exit(130);
    }
    this.signal = sig;
    console.error(`asyndgan ${this.command}: ${sig}: stopping at the next step and saving (again to exit at once)`);
  };

  constructor(private readonly command: string) {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  /** True once a signal arrived. */
  get requested(): boolean {
    return this.signal !== undefined;
  }

  /** The signal that arrived, if any. */
  get received(): NodeJS.Signals | undefined {
    return this.signal;
  }

  /** Restore the default handling (a later signal ends the process as usual). */
  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}
