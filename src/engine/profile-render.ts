/**
 * Rendering of a profile (profiler.ts measures, this file presents): the per-kernel text table
 * and the Chrome trace-event JSON that Perfetto and chrome://tracing open.
 */
import type { ProfileReport } from './profiler.js';

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function fmt(v: number, digits: number): string {
  return v > 0 ? v.toFixed(digits) : '-';
}

/** The report as a fixed-width text table (one row per kernel, then totals and the note). */
export function formatTable(report: ProfileReport, maxRows = Infinity): string {
  const head = ['kernel', 'calls', 'total ms', 'mean ms', 'share', 'GFLOP/s', 'GB/s'];
  const body = report.rows.slice(0, maxRows).map((r) => [
    r.kernel,
    String(r.calls),
    r.totalMs.toFixed(3),
    r.meanMs.toFixed(4),
    `${(100 * r.share).toFixed(1)}%`,
    fmt(r.gflops, 2),
    fmt(r.gbps, 2),
  ]);
  const hidden = report.rows.length - body.length;
  if (hidden > 0) {
    const rest = report.rows.slice(maxRows);
    const ms = rest.reduce((s, r) => s + r.totalMs, 0);
    body.push([`(${hidden} more kernels)`, String(rest.reduce((s, r) => s + r.calls, 0)), ms.toFixed(3), '', `${(100 * (report.kernelMs > 0 ? ms / report.kernelMs : 0)).toFixed(1)}%`, '', '']);
  }
  const flops = report.rows.reduce((s, r) => s + r.flops, 0);
  const bytes = report.rows.reduce((s, r) => s + r.bytes, 0);
  body.push([
    'total',
    String(report.dispatches),
    report.kernelMs.toFixed(3),
    '',
    report.kernelMs > 0 ? '100.0%' : '-',
    fmt(report.kernelMs > 0 ? flops / (report.kernelMs * 1e6) : 0, 2),
    fmt(report.kernelMs > 0 ? bytes / (report.kernelMs * 1e6) : 0, 2),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => pad(c, widths[i]!, i > 0)).join('  ');
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [
    `profile (${report.timing} timing) on ${report.adapter}: ${report.dispatches} dispatches in ${report.submissions} submissions, ` +
      `kernels ${report.kernelMs.toFixed(2)} ms, wall ${report.wallMs.toFixed(2)} ms`,
    line(head),
    rule,
    ...body.slice(0, -1).map(line),
    rule,
    line(body[body.length - 1]!),
    `note: ${report.note}`,
  ].join('\n');
}

/** One Chrome trace event (the subset used here). */
export interface TraceEvent {
  name: string;
  ph: 'X' | 'M';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  args?: Record<string, unknown>;
}

export interface ChromeTrace {
  traceEvents: TraceEvent[];
  displayTimeUnit: 'ms';
  otherData: Record<string, unknown>;
}

const PID = 1;
const TID_KERNELS = 1;
const TID_SUBMISSIONS = 2;

/**
 * The report in the Chrome trace event format (JSON object format): one complete ('X') event per
 * dispatch with ts/dur in microseconds and args {flops, bytes, seq, submission}, one per
 * submission on a second track, and metadata naming the tracks. Opens in ui.perfetto.dev and
 * chrome://tracing.
 */
export function toChromeTrace(report: ProfileReport): ChromeTrace {
  const us = (ms: number) => Math.round(ms * 1e6) / 1e3;
  const events: TraceEvent[] = [
    { name: 'process_name', ph: 'M', pid: PID, tid: TID_KERNELS, args: { name: `asyndgan on ${report.adapter}` } },
    {
      name: 'thread_name',
      ph: 'M',
      pid: PID,
      tid: TID_KERNELS,
      args: { name: report.timing === 'gpu' ? 'kernels (GPU timestamps)' : 'kernels (CPU-side estimate)' },
    },
    { name: 'thread_name', ph: 'M', pid: PID, tid: TID_SUBMISSIONS, args: { name: 'submissions' } },
  ];
  for (const e of report.events) {
    events.push({
      name: e.kernel,
      cat: e.kernel.split(':')[0]!,
      ph: 'X',
      pid: PID,
      tid: TID_KERNELS,
      ts: us(e.startMs),
      dur: us(e.durationMs),
      args: { flops: e.flops, bytes: e.bytes, seq: e.seq, submission: e.submission },
    });
  }
  const spans = new Map<number, { start: number; end: number; count: number }>();
  for (const e of report.events) {
    const s = spans.get(e.submission);
    if (!s) spans.set(e.submission, { start: e.startMs, end: e.startMs + e.durationMs, count: 1 });
    else {
      s.start = Math.min(s.start, e.startMs);
      s.end = Math.max(s.end, e.startMs + e.durationMs);
      s.count++;
    }
  }
  for (const [submission, s] of spans) {
    events.push({
      name: `submission ${submission}`,
      cat: 'submission',
      ph: 'X',
      pid: PID,
      tid: TID_SUBMISSIONS,
      ts: us(s.start),
      dur: us(s.end - s.start),
      args: { dispatches: s.count },
    });
  }
  return {
    traceEvents: events,
    displayTimeUnit: 'ms',
    otherData: { timing: report.timing, note: report.note, adapter: report.adapter, resolutionNs: report.resolutionNs },
  };
}
