/**
 * Where the evaluation's generator comes from: a generator.safetensors written by `asyndgan train`
 * or the federation server (its config in the `asyndgan_generator` metadata), or, when none is
 * given, one trained here with the centralized pix2pix trainer (clearly a different thing from the
 * federated AsynDGAN generator, and labelled as such in reports).
 */
import { tensor, tidy } from '../engine/index.js';
import { conditionTensor, imageTensor, type Dataset } from '../data/index.js';
import { Rng } from '../engine/index.js';
import { loadSafetensors } from '../io/safetensors.js';
import { ResnetGenerator, loadModule } from '../models/index.js';
import { Pix2pixTrainer, type GanConfig } from '../train/pix2pix.js';
import type { GeneratorInfo } from '../cli/train.js';
import { Progress, type ProgressStream } from '../cli/progress.js';

export type { GeneratorInfo, GeneratorTrainer } from '../cli/train.js';

/** Reads the generator's config from a safetensors file's `asyndgan_generator` metadata. */
export async function readGeneratorInfo(path: string): Promise<GeneratorInfo> {
  const file = await loadSafetensors(path);
  const text = file.metadata.asyndgan_generator;
  if (!text) throw new Error(`${path}: no "asyndgan_generator" metadata: not a generator written by asyndgan train/server`);
  return JSON.parse(text) as GeneratorInfo;
}

/** Rebuilds and loads a saved generator (strict: every weight must match). */
export async function loadGenerator(path: string): Promise<{ generator: ResnetGenerator; info: GeneratorInfo }> {
  const info = await readGeneratorInfo(path);
  const generator = new ResnetGenerator(info.conditionChannels, info.imageChannels, {
    ngf: info.config.ngf,
    blocks: info.config.blocks,
    norm: info.config.norm,
    dropout: info.config.dropout,
  });
  await loadModule(path, generator);
  generator.eval();
  return { generator, info };
}

export interface TrainGeneratorOptions {
  batchSize?: number;
  /** Progress bar stream (default stderr); false: none. */
  progress?: ProgressStream | false;
}

/**
 * Centralized pix2pix on pooled data (what `asyndgan train` does, without checkpoints), for
 * `cfg.iters` iterations. Returns the generator (the trainer's discriminator is disposed).
 */
export async function trainGenerator(
  train: Dataset,
  cfg: GanConfig,
  o: TrainGeneratorOptions = {},
): Promise<{ generator: ResnetGenerator; info: GeneratorInfo; seconds: number }> {
  const B = o.batchSize ?? 4;
  const { height: H, width: W } = train;
  const trainer = new Pix2pixTrainer(cfg, train.numClasses, train.modalities.length);
  const rng = new Rng(cfg.seed * 7919);
  const bar = o.progress === false ? null : new Progress({ total: cfg.iters, label: 'generator (pix2pix)', ...(o.progress ? { stream: o.progress } : {}) });
  const logEvery = Math.max(1, Math.min(10, Math.floor(cfg.iters / 20)));
  const t0 = performance.now();
  while (trainer.iter < cfg.iters) {
    const batch = Array.from({ length: B }, () => train.slices[Math.floor(rng.uniform() * train.slices.length)]!);
    const losses = tidy(() => trainer.step(
      tensor(conditionTensor(batch, train.numClasses), [B, train.numClasses, H, W]),
      tensor(imageTensor(batch), [B, train.modalities.length, H, W]),
    ));
    if (trainer.iter % logEvery === 0 || trainer.iter === cfg.iters) {
      bar?.update(trainer.iter, { L1: (await losses.gL1.item()).toFixed(3) });
    } else {
      bar?.update(trainer.iter);
    }
    for (const t of Object.values(losses)) t.dispose();
  }
  bar?.finish();
  trainer.discriminator.dispose();
  trainer.optimizerD.dispose();
  trainer.optimizerG.dispose();
  trainer.generator.eval();
  const info: GeneratorInfo = {
    config: cfg,
    conditionChannels: train.numClasses,
    imageChannels: train.modalities.length,
    size: H,
    classNames: train.classNames,
    modalities: train.modalities,
    trainer: 'centralized',
  };
  return { generator: trainer.generator, info, seconds: (performance.now() - t0) / 1000 };
}
