/**
 * /metrics in Prometheus' text exposition format (version 0.0.4), so an existing dashboard can
 * scrape the server: the same figures as the JSON, as `asyndgan_*` gauges and counters, one series
 * per node (label `node`) where the figure is per node. Pure: metrics in, text out.
 */
import type { ReportedPrivacy } from '../privacy/index.js';
import type { ServerMetrics } from './coordinator.js';

/** What server.ts serves as JSON at /metrics (its ScrapedMetrics), without importing server.ts. */
export interface ScrapedMetrics extends ServerMetrics {
  connections: { open: number; refused: Partial<Record<string, number>> };
  privacy: Record<string, ReportedPrivacy>;
}

/** Content-Type of the text format. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;
interface Family {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  samples: { labels?: Labels; value: number | undefined }[];
}

export function prometheusText(m: ScrapedMetrics): string {
  const perNode = (name: string, type: Family['type'], help: string, value: (n: ScrapedMetrics['nodes'][number]) => number | undefined): Family => ({
    name, type, help, samples: m.nodes.map((n) => ({ labels: { node: n.id }, value: value(n) })),
  });
  const last = m.lastRound;
  const families: Family[] = [
    { name: 'asyndgan_round', type: 'gauge', help: 'Current round of the federation.', samples: [{ value: m.round }] },
    { name: 'asyndgan_nodes_connected', type: 'gauge', help: 'Nodes connected now.', samples: [{ value: m.nodesConnected }] },
    { name: 'asyndgan_generator_steps_total', type: 'counter', help: 'Generator optimizer steps taken.', samples: [{ value: m.totals.steps }] },
    { name: 'asyndgan_bytes_in_total', type: 'counter', help: 'Bytes received from nodes.', samples: [{ value: m.totals.bytesIn }] },
    { name: 'asyndgan_bytes_out_total', type: 'counter', help: 'Bytes sent to nodes.', samples: [{ value: m.totals.bytesOut }] },
    { name: 'asyndgan_frames_in_total', type: 'counter', help: 'Frames received from nodes.', samples: [{ value: m.totals.framesIn }] },
    { name: 'asyndgan_frames_rejected_total', type: 'counter', help: 'Frames refused by validation.', samples: [{ value: m.totals.framesRejected }] },
    { name: 'asyndgan_connections_open', type: 'gauge', help: 'Open WebSocket connections.', samples: [{ value: m.connections.open }] },
    {
      name: 'asyndgan_connections_refused_total', type: 'counter', help: 'Connections refused at admission, by error code.',
      samples: Object.entries(m.connections.refused).map(([code, v]) => ({ labels: { code }, value: v })),
    },
    { name: 'asyndgan_checkpoint_saves_total', type: 'counter', help: 'Checkpoints written.', samples: [{ value: m.checkpoint.saves }] },
    { name: 'asyndgan_checkpoint_failures_total', type: 'counter', help: 'Checkpoint writes that failed.', samples: [{ value: m.checkpoint.failures }] },
    { name: 'asyndgan_checkpoint_consecutive_failures', type: 'gauge', help: 'Checkpoint failures since the last successful save (0: healthy).', samples: [{ value: m.checkpoint.consecutiveFailures }] },
    { name: 'asyndgan_checkpoint_last_round', type: 'gauge', help: 'Round of the last checkpoint written.', samples: [{ value: m.checkpoint.lastSavedRound }] },
    ...(['dReal', 'dFake', 'gGan', 'gL1'] as const).map((k): Family => ({
      name: `asyndgan_last_round_loss_${snake(k)}`, type: 'gauge', help: `Weighted mean ${k} of the replies applied in the last round.`,
      samples: [{ value: last?.losses?.[k] }],
    })),
    { name: 'asyndgan_last_round_duration_seconds', type: 'gauge', help: 'Duration of the last round.', samples: [{ value: last ? last.durationMs / 1000 : undefined }] },
    perNode('asyndgan_node_connected', 'gauge', 'Whether the node is connected (1) or not (0).', (n) => (n.connected ? 1 : 0)),
    perNode('asyndgan_node_masks', 'gauge', 'Masks the server holds for the node.', (n) => n.masks),
    perNode('asyndgan_node_sample_count', 'gauge', 'Sample count the node declared.', (n) => n.sampleCount),
    perNode('asyndgan_node_connects_total', 'counter', 'Times the node connected.', (n) => n.stats.connects),
    perNode('asyndgan_node_replies_on_time_total', 'counter', 'Replies that arrived before the round deadline.', (n) => n.stats.repliesOnTime),
    perNode('asyndgan_node_replies_late_total', 'counter', 'Replies that arrived after the deadline.', (n) => n.stats.repliesLate),
    perNode('asyndgan_node_replies_dropped_total', 'counter', 'Late replies dropped as too stale.', (n) => n.stats.repliesDropped),
    perNode('asyndgan_node_replies_clipped_total', 'counter', 'Replies scaled down to the norm bound.', (n) => n.stats.repliesClipped),
    perNode('asyndgan_node_replies_distrusted_total', 'counter', 'Replies given no weight by median-trust aggregation.', (n) => n.stats.repliesDistrusted),
    perNode('asyndgan_node_frames_rejected_total', 'counter', 'Frames from the node refused by validation.', (n) => n.stats.framesRejected),
    perNode('asyndgan_node_bytes_in_total', 'counter', 'Bytes received from the node.', (n) => n.stats.bytesIn),
    perNode('asyndgan_node_bytes_out_total', 'counter', 'Bytes sent to the node.', (n) => n.stats.bytesOut),
    perNode('asyndgan_node_latency_seconds', 'gauge', 'Request-to-reply time of the last reply.', (n) => ms(n.stats.lastLatencyMs)),
    perNode('asyndgan_node_last_round', 'gauge', 'Last round the node answered.', (n) => n.stats.lastRound),
    perNode('asyndgan_node_loss_g_l1', 'gauge', 'L1 loss in the node\'s last reply.', (n) => n.stats.lastLosses?.gL1),
    perNode('asyndgan_node_privacy_epsilon', 'gauge', 'Privacy epsilon the node reported (absent: unreported or unbounded).', (n) => {
      const p = m.privacy[n.id];
      return p && p.preset !== 'unreported' && p.epsilon !== null ? p.epsilon : undefined;
    }),
  ];
  const out: string[] = [];
  for (const f of families) {
    const samples = f.samples.filter((s) => s.value !== undefined && Number.isFinite(s.value));
    if (samples.length === 0) continue; // a family with no sample says nothing; skip its header too
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    for (const s of samples) out.push(`${f.name}${labelText(s.labels)} ${s.value}`);
  }
  return out.join('\n') + '\n';
}

/** Does an Accept header prefer Prometheus' text format over JSON? (Prometheus asks for text/plain.) */
export function wantsPrometheus(accept: string | undefined, query: string | undefined): boolean {
  if (query && new URLSearchParams(query).get('format') === 'prometheus') return true;
  if (!accept) return false;
  return /(^|,)\s*(text\/plain|application\/openmetrics-text)/i.test(accept) && !/(^|,)\s*application\/json/i.test(accept);
}

function labelText(labels: Labels | undefined): string {
  if (!labels || Object.keys(labels).length === 0) return '';
  return '{' + Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',') + '}';
}
const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
const snake = (k: string): string => k.replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
const ms = (v: number | undefined): number | undefined => (v === undefined ? undefined : v / 1000);
