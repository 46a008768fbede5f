/**
 * `asyndgan train`: centralized pix2pix (generator + one discriminator in one process) on pooled
 * data, or on one node's data with --node (the "single center" baseline). Writes:
 *   OUT/train_state.safetensors   everything needed to resume (--resume)
 *   OUT/generator.safetensors     the generator alone, PyTorch names, with its config (for synth)
 *   OUT/samples.png               masks, real and synthetic test images
 *   OUT/losses.png, OUT/report.json
 *   OUT/scalars.jsonl             the losses, one JSON line per reading (OUT/tensorboard/ with --tensorboard)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { init, noGrad, tensor, tidy } from '../engine/index.js';
import { concatDatasets, conditionTensor, imageTensor, type Dataset } from '../data/index.js';
import { lineChartPng, runScalarLog, writeFileAtomic, writeJsonAtomic } from '../io/index.js';
import { saveModule } from '../models/index.js';
import { Pix2pixTrainer, type GanConfig } from '../train/pix2pix.js';
import { loadTrainingState, saveTrainingState } from '../train/state.js';
import { Rng } from '../engine/index.js';
import { loadDataSource } from './data-source.js';
import { GAN_OPTIONS, ganConfig, imageSize, int, makeOutputDir, parseOptions, UsageError } from './options.js';
import { Progress } from './progress.js';
import { writeSampleGrid } from './samples.js';
import { StopSignal } from './stop-signal.js';

/** How a generator was trained (provenance, shown by `asyndgan eval`). */
export type GeneratorTrainer = 'centralized' | 'federated';

/** A federated generator's run: rounds trained and the nodes that answered. */
export interface FederationInfo {
  rounds: number;
  nodes: number;
  nodeIds: string[];
}

/**
 * What synth needs to rebuild the generator, and where it came from: stored in
 * generator.safetensors' metadata. `trainer` is absent in files written before it existed
 * (provenance unknown).
 */
export interface GeneratorInfo {
  config: GanConfig;
  conditionChannels: number;
  imageChannels: number;
  size: number;
  classNames: string[];
  modalities: string[];
  trainer?: GeneratorTrainer;
  /** With trainer 'federated'. */
  federation?: FederationInfo;
}

export async function trainCommand(argv: string[]): Promise<void> {
  const v = parseOptions('train', '[options]', {
    data: { type: 'string', default: 'phantom', help: 'phantom[:mods] | mricron | brats:DIR | png:IMAGES,LABELS' },
    size: { type: 'string', default: '64', help: 'image size (square)' },
    nodes: { type: 'string', default: '3', help: 'how the data set is split into centers' },
    node: { type: 'string', help: 'train on this center only (0-based); default: all data pooled' },
    'batch-size': { type: 'string', default: '4', help: 'batch size' },
    out: { type: 'string', default: 'runs/train', help: 'output folder' },
    'checkpoint-every': { type: 'string', default: '50', help: 'iterations between checkpoints' },
    resume: { type: 'boolean', default: false, help: 'continue from OUT/train_state.safetensors' },
    tensorboard: { type: 'boolean', default: false, help: 'also write the losses as TensorBoard events in OUT/tensorboard/ (they always go to OUT/scalars.jsonl)' },
    ...GAN_OPTIONS,
  }, argv);
  const cfg = ganConfig(v);
  const size = imageSize(v, cfg.dLayers);
  const batchSize = int(v, 'batch-size');
  const out = String(v.out);
  makeOutputDir(out);

  const data = await loadDataSource(String(v.data), { size, nodes: int(v, 'nodes'), seed: cfg.seed });
  const train: Dataset = v.node !== undefined ? data.nodes[int(v, 'node')]! : concatDatasets(data.nodes);
  if (!train) throw new UsageError(`--node ${v.node}: there are only ${data.nodes.length} centers`);
  const engine = await init();
  console.error(`asyndgan train: ${train.slices.length} slices (${data.name}), ${size}x${size}, adapter ${engine.gpu.adapterName}`);

  const trainer = new Pix2pixTrainer(cfg, train.numClasses, train.modalities.length);
  const statePath = join(out, 'train_state.safetensors');
  const history: { iter: number; dReal: number; dFake: number; gGan: number; gL1: number }[] = [];
  if (v.resume && existsSync(statePath)) {
    const info = await loadTrainingState(statePath, modulesOf(trainer));
    trainer.iter = Number(info.iter);
    history.push(...((info.history as typeof history) ?? []));
    console.error(`resumed at iteration ${trainer.iter}`);
  }

  const rng = new Rng(cfg.seed * 7919 + trainer.iter);
  const progress = new Progress({ total: cfg.iters, label: 'train', unit: 'it' });
  progress.update(trainer.iter);
  const save = async () => {
    await saveTrainingState(statePath, { ...modulesOf(trainer), info: { iter: trainer.iter, history, config: cfg } });
  };
  const logEvery = Math.max(1, Math.floor(cfg.iters / 100));
  const scalars = runScalarLog(out, v.tensorboard === true);
  const stop = new StopSignal('train');
  while (trainer.iter < cfg.iters && !stop.requested) {
    const batch = Array.from({ length: batchSize }, () => train.slices[Math.floor(rng.uniform() * train.slices.length)]!);
    const losses = tidy(() => {
      const mask = tensor(conditionTensor(batch, train.numClasses), [batchSize, train.numClasses, size, size]);
      const real = tensor(imageTensor(batch), [batchSize, train.modalities.length, size, size]);
      return trainer.step(mask, real);
    });
    // Losses are read only every logEvery iterations: a readback waits for the GPU.
    if (trainer.iter % logEvery === 0 || trainer.iter === cfg.iters) {
      const [dReal, dFake, gGan, gL1] = await Promise.all([losses.dReal.item(), losses.dFake.item(), losses.gGan.item(), losses.gL1.item()]);
      history.push({ iter: trainer.iter, dReal, dFake, gGan, gL1 });
      scalars.write(trainer.iter, { 'loss/G_L1': gL1, 'loss/G_GAN': gGan, 'loss/D_real': dReal, 'loss/D_fake': dFake });
      progress.update(trainer.iter, { L1: gL1.toFixed(3), G: gGan.toFixed(3), D: ((dReal + dFake) / 2).toFixed(3) });
    } else {
      progress.update(trainer.iter);
    }
    for (const t of Object.values(losses)) t.dispose();
    // Recording can run far ahead of the GPU; Dawn crashes when hundreds of steps are queued.
    if (trainer.iter % 4 === 0) await engine.sync();
    if (trainer.iter % int(v, 'checkpoint-every') === 0) await save();
  }
  await engine.sync();
  await save();
  const info: GeneratorInfo = {
    config: cfg,
    conditionChannels: train.numClasses,
    imageChannels: train.modalities.length,
    size,
    classNames: train.classNames,
    modalities: train.modalities,
    trainer: 'centralized',
  };
  const generatorPath = join(out, 'generator.safetensors');
  await saveModule(generatorPath, trainer.generator, { asyndgan_generator: JSON.stringify(info) });
  if (stop.requested) {
    // Interrupted: the state and the generator are saved; pictures and report wait for the end.
    progress.log(`asyndgan train: ${stop.received} at iteration ${trainer.iter}/${cfg.iters}: saved ${statePath} and ${generatorPath} (continue with --resume)`);
    stop.dispose();
    return;
  }
  stop.dispose();
  progress.finish();
  const rows = await synthesizeRows(trainer, data.test, 6);
  await writeSampleGrid(join(out, 'samples.png'), rows, size, size, `pix2pix after ${cfg.iters} iterations (held-out masks)`, train.classNames);
  await writeFileAtomic(join(out, 'losses.png'), lineChartPng({
    title: 'training losses',
    xLabel: 'iteration',
    series: [
      { name: 'G L1', x: history.map((h) => h.iter), y: history.map((h) => h.gL1) },
      { name: 'G GAN', x: history.map((h) => h.iter), y: history.map((h) => h.gGan) },
      { name: 'D', x: history.map((h) => h.iter), y: history.map((h) => (h.dReal + h.dFake) / 2) },
    ],
  }));
  const report = join(out, 'report.json');
  await writeJsonAtomic(report, { data: data.name, slices: train.slices.length, config: cfg, history });
  console.log(`report: ${report}`);
}

function modulesOf(t: Pix2pixTrainer) {
  return {
    modules: { G: t.generator, D: t.discriminator },
    optimizers: { G: t.optimizerG, D: t.optimizerD },
  };
}

async function synthesizeRows(trainer: Pix2pixTrainer, test: Dataset, count: number) {
  const slices = test.slices.slice(0, count);
  const size = test.height;
  trainer.generator.eval();
  const fake = noGrad(() =>
    tidy(() => trainer.generator.forward(tensor(conditionTensor(slices, test.numClasses), [slices.length, test.numClasses, size, test.width]))),
  );
  const fakes = await fake.read();
  fake.dispose();
  trainer.generator.train();
  const plane = test.modalities.length * size * test.width;
  return slices.map((slice, i) => ({ label: slice.key, slice, fake: fakes.subarray(i * plane, (i + 1) * plane) }));
}
