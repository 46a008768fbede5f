/** Shared command-line option definitions and parsing (node:util parseArgs) with --help. */
import { parseArgs } from 'node:util';
import { DEFAULT_GAN_CONFIG, type GanConfig } from '../train/pix2pix.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  default?: string | boolean;
  help: string;
}
export type OptionSpecs = Record<string, OptionSpec>;

/** The pix2pix / AsynDGAN model and optimization options. */
export const GAN_OPTIONS: OptionSpecs = {
  ngf: { type: 'string', default: String(DEFAULT_GAN_CONFIG.ngf), help: 'generator filters (reference 64)' },
  blocks: { type: 'string', default: String(DEFAULT_GAN_CONFIG.blocks), help: 'generator residual blocks (reference 9)' },
  ndf: { type: 'string', default: String(DEFAULT_GAN_CONFIG.ndf), help: 'discriminator filters (reference 64)' },
  'd-layers': { type: 'string', default: String(DEFAULT_GAN_CONFIG.dLayers), help: 'discriminator stride-2 layers (reference 3)' },
  norm: { type: 'string', default: DEFAULT_GAN_CONFIG.norm, help: 'batch | instance' },
  'no-dropout': { type: 'boolean', default: false, help: 'no dropout in the generator blocks' },
  'lambda-l1': { type: 'string', default: String(DEFAULT_GAN_CONFIG.lambdaL1), help: 'weight of the L1 term' },
  lr: { type: 'string', default: String(DEFAULT_GAN_CONFIG.lr), help: 'Adam learning rate' },
  beta1: { type: 'string', default: String(DEFAULT_GAN_CONFIG.beta1), help: 'Adam beta1' },
  iters: { type: 'string', default: String(DEFAULT_GAN_CONFIG.iters), help: 'training iterations' },
  'decay-iters': { type: 'string', default: String(DEFAULT_GAN_CONFIG.decayIters), help: 'final iterations with linear lr decay' },
  seed: { type: 'string', default: String(DEFAULT_GAN_CONFIG.seed), help: 'seed of weights and sampling' },
};

export function parseOptions(command: string, usage: string, specs: OptionSpecs, argv: string[]): Record<string, string | boolean> {
  const all: OptionSpecs = { ...specs, help: { type: 'boolean', default: false, help: 'show this help' } };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: argv,
      options: Object.fromEntries(Object.entries(all).map(([k, s]) => [k, { type: s.type, ...(s.default !== undefined ? { default: s.default } : {}) }])),
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    throw new UsageError(`${command}: ${(err as Error).message}\n\n${helpText(command, usage, all)}`);
  }
  if (values.help) {
    console.log(helpText(command, usage, all));
    process.exit(0);
  }
  return values as Record<string, string | boolean>;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

function helpText(command: string, usage: string, specs: OptionSpecs): string {
  const lines = Object.entries(specs).map(([k, s]) => {
    const flag = s.type === 'boolean' ? `--${k}` : `--${k} <value>`;
    const def = s.default !== undefined && s.type === 'string' ? ` (default ${s.default})` : '';
    return `  ${flag.padEnd(26)} ${s.help}${def}`;
  });
  return `usage: asyndgan ${command} ${usage}\n\noptions:\n${lines.join('\n')}`;
}

export function int(values: Record<string, string | boolean>, key: string): number {
  const v = Number(values[key]);
  if (!Number.isInteger(v) || v < 0) throw new UsageError(`--${key} must be a non-negative integer, got "${values[key]}"`);
  return v;
}

export function num(values: Record<string, string | boolean>, key: string): number {
  const v = Number(values[key]);
  if (!Number.isFinite(v)) throw new UsageError(`--${key} must be a number, got "${values[key]}"`);
  return v;
}

export function ganConfig(v: Record<string, string | boolean>): GanConfig {
  const norm = String(v.norm);
  if (norm !== 'batch' && norm !== 'instance') throw new UsageError(`--norm must be batch or instance, got "${norm}"`);
  const cfg: GanConfig = {
    ngf: int(v, 'ngf'),
    blocks: int(v, 'blocks'),
    ndf: int(v, 'ndf'),
    dLayers: int(v, 'd-layers'),
    norm,
    dropout: !v['no-dropout'],
    lambdaL1: num(v, 'lambda-l1'),
    lr: num(v, 'lr'),
    beta1: num(v, 'beta1'),
    iters: int(v, 'iters'),
    decayIters: int(v, 'decay-iters'),
    seed: int(v, 'seed'),
  };
  if (cfg.decayIters > cfg.iters) throw new UsageError('--decay-iters cannot exceed --iters');
  return cfg;
}
