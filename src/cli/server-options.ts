/**
 * Options and set-up shared by both algorithms' `server` and `node` commands (AsynDGAN and
 * --algorithm fedavg-gan), so the two stay spelled, documented and checked the same way.
 */
import { readFileSync } from 'node:fs';
import { TokenTable } from '../net/index.js';
import { loadDataSource, type FederatedData } from './data-source.js';
import { int, UsageError, type OptionSpecs } from './options.js';

/** Where a server listens and who may log in. */
export const SERVER_LISTEN_OPTIONS: OptionSpecs = {
  tokens: { type: 'string', help: 'JSON file {"nodes": {"<id>": "<token>"}}' },
  host: { type: 'string', default: '127.0.0.1', help: 'interface to listen on (0.0.0.0 for a network)' },
  port: { type: 'string', default: '8787', help: 'port (0 = ephemeral)' },
  'tls-cert': { type: 'string', help: 'PEM certificate: serve wss:// and https://' },
  'tls-key': { type: 'string', help: 'PEM private key for --tls-cert' },
};

/** The generator a server trains: its input classes, output modalities and image size. */
export const SERVER_MODEL_OPTIONS: OptionSpecs = {
  classes: { type: 'string', help: 'mask classes (generator input channels)' },
  'class-names': { type: 'string', help: 'comma-separated class names (for reports)' },
  modalities: { type: 'string', default: 't1,t1c,t2,flair', help: 'comma-separated modality names (generator outputs)' },
  size: { type: 'string', default: '64', help: 'image size (square)' },
};

/** Where a server's results go and whether it stops after the last round. */
export const SERVER_OUT_OPTIONS: OptionSpecs = {
  out: { type: 'string', default: 'runs/server', help: 'where generator.safetensors and the report go' },
  'exit-when-done': { type: 'boolean', default: false, help: 'stop the server after the last round' },
};

/** Which server a node joins, as whom, and which share of the data set it holds. */
export const NODE_OPTIONS: OptionSpecs = {
  server: { type: 'string', help: 'server WebSocket URL, e.g. ws://10.0.0.5:8787/ws' },
  id: { type: 'string', help: 'this node id (as in the server token file)' },
  token: { type: 'string', help: 'this node token (or env ASYNDGAN_TOKEN)' },
  data: { type: 'string', default: 'phantom', help: 'phantom[:mods] | mricron | brats:DIR | png:IMAGES,LABELS' },
  index: { type: 'string', help: 'which center of the split this node is (0-based)' },
  nodes: { type: 'string', default: '3', help: 'number of centers the data set is split into' },
  size: { type: 'string', default: '64', help: 'image size (square)' },
};

/** --tokens, checked and loaded (before the engine starts, so a bad file is reported at once). */
export async function serverTokens(v: Record<string, string | boolean>): Promise<TokenTable> {
  if (!v.tokens) throw new UsageError('server needs --tokens FILE (see --help)');
  return TokenTable.load(String(v.tokens));
}

/** The node's token (--token or env ASYNDGAN_TOKEN), after checking the options every node needs. */
export function nodeToken(v: Record<string, string | boolean>): string {
  const token = (v.token as string | undefined) ?? process.env.ASYNDGAN_TOKEN;
  if (!v.server || !v.id || !token || v.index === undefined) throw new UsageError('node needs --server, --id, --token and --index (see --help)');
  return token;
}

/** The PEM file named by option `key`, or undefined when not given; an unreadable file is a UsageError. */
export function readPemOption(v: Record<string, string | boolean>, key: string): Buffer | undefined {
  if (!v[key]) return undefined;
  try {
    return readFileSync(String(v[key]));
  } catch (err) {
    throw new UsageError(`--${key} ${v[key]}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

/** This node's share of the data set: --data split into --nodes centers, center --index (checked). */
export async function loadNodeShare(v: Record<string, string | boolean>, seed: number): Promise<{ data: FederatedData; own: FederatedData['nodes'][number]; size: number; index: number }> {
  const size = int(v, 'size');
  const index = int(v, 'index');
  const data = await loadDataSource(String(v.data), { size, nodes: int(v, 'nodes'), seed });
  const own = data.nodes[index];
  if (!own) throw new UsageError(`--index ${index}: the data set has ${data.nodes.length} centers`);
  return { data, own, size, index };
}
