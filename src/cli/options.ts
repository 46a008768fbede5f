/** Shared command-line option definitions and parsing (node:util parseArgs) with --help. */
import { accessSync, constants, mkdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { patchOutputSize } from '../models/index.js';
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
  'decay-iters': { type: 'string', help: `final iterations with linear lr decay (default min(${DEFAULT_GAN_CONFIG.decayIters}, iters / 2))` },
  seed: { type: 'string', default: String(DEFAULT_GAN_CONFIG.seed), help: 'seed of weights and sampling' },
};

export function parseOptions(command: string, usage: string, specs: OptionSpecs, argv: string[]): Record<string, string | boolean> {
  const all: OptionSpecs = { ...specs, help: { type: 'boolean', default: false, help: 'show this help' } };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({
      args: attachNegativeValues(argv, all),
      options: Object.fromEntries(Object.entries(all).map(([k, s]) => [k, { type: s.type, ...(s.default !== undefined ? { default: s.default } : {}) }])),
      strict: true,
      allowPositionals: false,
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    // node:util's message runs over several lines; the first says what was wrong.
    const first = (err as Error).message.split('\n')[0]!.replace(/^Unknown option/, 'unknown option');
    throw new UsageError(`${command}: ${first} (asyndgan ${command} --help lists the options)`);
  }
  if (values.help) {
    console.log(helpText(command, usage, all));
    process.exit(0);
  }
  return values as Record<string, string | boolean>;
}

/**
 * `--size -5` reaches parseArgs as an option named "-5" ("argument is ambiguous"); written
 * `--size=-5` it is a value, which the option's own check then refuses by name.
 */
function attachNegativeValues(argv: readonly string[], specs: OptionSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = argv[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : undefined;
    if (name !== undefined && specs[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

/** Creates output folder `dir` (and its parents), or says in one line why it cannot. */
export function makeOutputDir(dir: string, key = 'out'): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new UsageError(`--${key} ${dir}: cannot write there (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/** A bad command line: main.ts prints its message as one line and exits 2. */
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
    decayIters: 0,
    seed: int(v, 'seed'),
  };
  cfg.decayIters = v['decay-iters'] === undefined ? Math.min(DEFAULT_GAN_CONFIG.decayIters, Math.floor(cfg.iters / 2)) : int(v, 'decay-iters');
  if (cfg.decayIters > cfg.iters) throw new UsageError(`--decay-iters ${cfg.decayIters} cannot exceed --iters ${cfg.iters}`);
  return cfg;
}

/**
 * The GAN config of a run of `rounds` rounds (server, demo): the learning-rate schedule runs over
 * rounds (--iters is ignored), and a decay longer than the run is clamped to it.
 */
export function ganConfigForRounds(v: Record<string, string | boolean>, rounds: number): GanConfig {
  const decay = v['decay-iters'] === undefined ? undefined : Math.min(int(v, 'decay-iters'), rounds);
  return ganConfig({ ...v, iters: String(rounds), ...(decay === undefined ? {} : { 'decay-iters': String(decay) }) });
}

/**
 * `--size` for the pix2pix networks: the generator's two stride-2 levels need a multiple of 4, and
 * the PatchGAN's stride-2 layers must leave at least one patch.
 */
export function imageSize(values: Record<string, string | boolean>, dLayers: number, key = 'size'): number {
  const size = int(values, key);
  let min = 4;
  while (patchOutputSize(min, dLayers) < 1) min += 4;
  if (size % 4 !== 0 || size < min) {
    throw new UsageError(`--${key} ${size}: images must be a multiple of 4 and at least ${min} pixels for these networks (try --${key} ${Math.max(min, Math.ceil(size / 4) * 4)})`);
  }
  return size;
}
