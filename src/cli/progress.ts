/**
 * Progress reporting for long work (training rounds, dataset preparation, benchmarks).
 *
 * On a terminal it redraws one line in place, at most ~10 times a second, so a fast loop does not
 * spend its time printing. Elsewhere (CI logs, files, pipes) in-place redraws would turn into
 * thousands of lines or garbage, so it prints a plain line each time another `logPercentStep`
 * percent is done or `logIntervalMs` has passed, whichever comes first.
 *
 *   const bar = new Progress({ total: rounds, label: 'train' });
 *   for (...) { ...; bar.tick(1, { loss: g }); }
 *   bar.finish();
 */

/** Where progress goes: process.stderr by default; anything with write() for tests. */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** Extra values shown after the counters, e.g. { loss: 0.123, lr: 2e-4 }. */
export type ProgressFields = Record<string, number | string>;

/** Options for Progress. */
export interface ProgressOptions {
  /** Number of steps; omit (or 0) when unknown: then no bar, percentage or ETA is shown. */
  total?: number;
  /** Text in front of the line. */
  label?: string;
  /** Output (default process.stderr). */
  stream?: ProgressStream;
  /** Redraw in place? Default: stream.isTTY. */
  tty?: boolean;
  /** Terminal: minimum time between redraws (default 100 ms, i.e. at most 10 Hz). */
  minIntervalMs?: number;
  /** Non-terminal: print a line each time this many more percent are done (default 10). */
  logPercentStep?: number;
  /** Non-terminal: also print a line when this much time passed since the last one (default 10 s). */
  logIntervalMs?: number;
  /** Name of one step, for the rate (default 'it'). */
  unit?: string;
  /** Clock in milliseconds (default performance.now); injectable for tests. */
  now?: () => number;
}

/**
 * Rate is measured over roughly this recent window so it follows speed changes. The window starts
 * at the first update(), not at construction: what that update reports (the iteration a resumed run
 * starts from, or a first step that also paid the start-up: shader compilation, data loading) was not
 * run at this process's steady speed, so it is never counted as progress per second.
 */
const RATE_WINDOW_MS = 10_000;

/** A progress bar / progress log. See the module comment for the output modes. */
export class Progress {
  readonly total: number | undefined;
  private label: string;
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly minIntervalMs: number;
  private readonly logPercentStep: number;
  private readonly logIntervalMs: number;
  private readonly unit: string;
  private readonly now: () => number;
  private readonly start: number;
  private cur = 0;
  private fields: ProgressFields = {};
  private lastDraw = -Infinity;
  private lastLogPct = 0;
  private lastLogTime: number;
  private endTime = 0;
  private drawn = false; // a partial line is on the terminal
  private done = false;
  /** (time, count) samples for the windowed rate, oldest first; empty until the first update. */
  private samples: [number, number][] = [];
  /** The first update's (time, count): the baseline of the average rate in the final line. */
  private baseline: [number, number] | undefined;

  constructor(opts: ProgressOptions = {}) {
    this.total = opts.total !== undefined && opts.total > 0 ? opts.total : undefined;
    this.label = opts.label ?? '';
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? this.stream.isTTY === true;
    this.minIntervalMs = opts.minIntervalMs ?? 100;
    this.logPercentStep = opts.logPercentStep ?? 10;
    this.logIntervalMs = opts.logIntervalMs ?? 10_000;
    this.unit = opts.unit ?? 'it';
    this.now = opts.now ?? (() => performance.now());
    this.start = this.now();
    this.lastLogTime = this.start;
  }

  /** Steps done so far. */
  get current(): number {
    return this.cur;
  }

  /** Milliseconds since construction (or until finish()). */
  get elapsedMs(): number {
    return (this.done ? this.endTime : this.now()) - this.start;
  }

  /**
   * Recent steps per second (over the last ~10 s) of the steps run since the first update; 0 (no
   * rate, no ETA shown) until a second update has measured something.
   */
  get rate(): number {
    const first = this.samples[0];
    if (!first) return 0;
    const t = this.done ? this.endTime : this.now();
    const dt = t - first[0];
    return dt > 0 ? ((this.cur - first[1]) * 1000) / dt : 0;
  }

  /** Average steps per second from the first update to now (or finish). */
  private averageRate(t: number): number {
    if (!this.baseline) return 0;
    const dt = t - this.baseline[0];
    return dt > 0 ? ((this.cur - this.baseline[1]) * 1000) / dt : 0;
  }

  /** Advance by `n` steps (default 1), optionally updating the extra fields. */
  tick(n = 1, fields?: ProgressFields): void {
    this.update(this.cur + n, fields);
  }

  /** Set the absolute number of steps done, optionally updating the extra fields. */
  update(current: number, fields?: ProgressFields): void {
    if (this.done) return;
    this.cur = current;
    if (fields) Object.assign(this.fields, fields);
    const t = this.now();
    this.sample(t);
    if (this.tty) {
      if (t - this.lastDraw >= this.minIntervalMs) this.redraw(t);
      return;
    }
    const pct = this.total ? (100 * this.cur) / this.total : 0;
    const stepReached = this.total !== undefined && this.logPercentStep > 0 &&
      Math.floor(pct / this.logPercentStep) > Math.floor(this.lastLogPct / this.logPercentStep);
    if (stepReached || t - this.lastLogTime >= this.logIntervalMs) {
      // Completion is reported by finish(), which adds the total time: skip a duplicate 100% line.
      if (this.total !== undefined && this.cur >= this.total) return;
      this.lastLogPct = pct;
      this.lastLogTime = t;
      this.stream.write(this.line(t, false) + '\n');
    }
  }

  /** Replace the extra fields without advancing (shown at the next redraw or log line). */
  setFields(fields: ProgressFields): void {
    this.fields = { ...fields };
  }

  /** Change the label (e.g. 'round 3/10'). */
  setLabel(label: string): void {
    this.label = label;
  }

  /** Print a message on its own line without corrupting the in-place bar. */
  log(message: string): void {
    if (this.tty && this.drawn) {
      this.stream.write('\r\x1b[K' + message + '\n');
      if (!this.done) this.redraw(this.now());
    } else {
      this.stream.write(message + '\n');
    }
  }

  /** Print the final line (with total time and average rate) and stop. Idempotent. */
  finish(fields?: ProgressFields): void {
    if (this.done) return;
    if (fields) Object.assign(this.fields, fields);
    const t = this.now();
    this.endTime = t;
    this.done = true;
    const line = this.line(t, true);
    this.stream.write((this.tty ? '\r' + this.fit(line) + '\x1b[K' : line) + '\n');
    this.drawn = false;
  }

  private sample(t: number): void {
    if (!this.baseline) {
      this.baseline = [t, this.cur];
      this.samples.push([t, this.cur]);
      return;
    }
    const last = this.samples[this.samples.length - 1]!;
    // One sample per 1/20 of the window bounds memory however fast tick() is called.
    if (t - last[0] >= RATE_WINDOW_MS / 20) this.samples.push([t, this.cur]);
    while (this.samples.length > 2 && t - this.samples[1]![0] >= RATE_WINDOW_MS) this.samples.shift();
  }

  private redraw(t: number): void {
    this.lastDraw = t;
    this.drawn = true;
    this.stream.write('\r' + this.fit(this.line(t, false)) + '\x1b[K');
  }

  /** Keep a terminal line shorter than the terminal: a wrapped line cannot be redrawn with '\r'. */
  private fit(line: string): string {
    const cols = this.stream.columns;
    return cols && cols > 1 && line.length > cols - 1 ? line.slice(0, cols - 1) : line;
  }

  /** The text of one status line. */
  private line(t: number, final: boolean): string {
    const parts: string[] = [];
    if (this.label) parts.push(this.label);
    const elapsed = t - this.start;
    const total = this.total;
    const rate = final ? this.averageRate(t) : this.rate;
    const frac = total ? Math.min(1, Math.max(0, this.cur / total)) : 0;
    if (total) {
      parts.push(`${String(Math.floor(100 * frac)).padStart(3)}%`); // floor: 100% only when done
      if (this.tty) parts.push(bar(frac, this.barWidth()));
      parts.push(`${this.cur}/${total}`);
    } else {
      parts.push(`${this.cur} ${this.unit}`);
    }
    const timing = [final ? `done in ${formatDuration(elapsed)}` : formatDuration(elapsed)];
    if (!final && total && rate > 0 && this.cur < total) timing.push(`eta ${formatDuration(((total - this.cur) / rate) * 1000)}`);
    if (rate > 0) timing.push(formatRate(rate, this.unit));
    parts.push(`[${timing.join(', ')}]`);
    for (const [k, v] of Object.entries(this.fields)) parts.push(`${k}=${typeof v === 'number' ? formatNumber(v) : v}`);
    return parts.join(' ');
  }

  private barWidth(): number {
    const cols = this.stream.columns || 80; // 0 or undefined: size unknown
    return Math.max(10, Math.min(30, Math.floor(cols / 4)));
  }
}

function bar(frac: number, width: number): string {
  const full = Math.floor(frac * width);
  return '|' + '█'.repeat(full) + '░'.repeat(width - full) + '|';
}

/** 950 -> '0.9s'... '12.3s', '2m05s', '1h02m'. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '?';
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)}s`;
  const total = Math.round(s);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const sec = total % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, '0')}m`;
  return `${m}m${String(sec).padStart(2, '0')}s`;
}

/** Steps per second, or seconds per step when slower than one per second. */
export function formatRate(perSecond: number, unit = 'it'): string {
  if (perSecond >= 1) return `${formatNumber(perSecond)} ${unit}/s`;
  return `${formatNumber(1 / perSecond)} s/${unit}`;
}

/** 4 significant digits, exponent form for very small or large magnitudes. */
function formatNumber(v: number): string {
  if (!Number.isFinite(v) || v === 0 || (Number.isInteger(v) && Math.abs(v) < 1e6)) return String(v);
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e6) return v.toExponential(3).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(v.toPrecision(4)));
}
