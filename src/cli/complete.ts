/**
 * `asyndgan complete`: missing-modality completion at one center. Trains (centralized, progress
 * bar) a generator conditioned on the mask and on whichever modalities are available, predicting a
 * residual over a per-class linear regression (src/train/completion.ts), with `--focus` of the
 * samples hiding exactly `--missing` and the rest a random non-empty subset. Then, on held-out
 * slices, hides `--missing` and synthesizes it from the rest. Scores MAE and PSNR against the real
 * modality next to baselines measured in the same run (the same generator given only the mask;
 * per-class mean intensity; the per-class linear regression alone), and writes:
 *   OUT/complete.png                       given modalities, real and synthesized missing ones, both baselines
 *   OUT/complete.json                      numbers, config, loss history
 *   OUT/completion-generator.safetensors   the generator (PyTorch names); layout and linear model in the metadata
 *   OUT/complete_state.safetensors         everything needed to resume (--resume)
 * Ctrl-C (SIGINT) or SIGTERM stops at the next iteration, saves the state and the generator, and
 * says where; `--resume` continues.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { init } from '../engine/index.js';
import { concatDatasets, type Dataset } from '../data/index.js';
import { composeGrid, fromFloat, labelsToImage, saveImagePng, writeJsonAtomic, type RgbImage } from '../io/index.js';
import { saveModule } from '../models/index.js';
import {
  availabilityWithout, COMPLETION_GAN_DEFAULTS, CompletionTrainer, completionChannels, evaluateCompletion, type CompletionResult,
} from '../train/completion.js';
import { loadTrainingState, saveTrainingState } from '../train/state.js';
import { modalityChannels, modalityNames } from '../train/modalities.js';
import { loadDataSource } from './data-source.js';
import { GAN_OPTIONS, ganConfig, int, num, parseOptions, UsageError } from './options.js';
import { Progress } from './progress.js';
import { StopSignal } from './stop-signal.js';

export async function completeCommand(argv: string[]): Promise<void> {
  // Dropout makes pix2pix outputs noisier; completion is scored by MAE, so it is off unless asked for.
  const { 'no-dropout': _noDropout, ...ganOptions } = GAN_OPTIONS;
  const v = parseOptions('complete', '--missing flair [options]', {
    data: { type: 'string', default: 'phantom', help: 'phantom[:mods] | mricron | brats:DIR | png:IMAGES,LABELS (needs 2+ modalities)' },
    missing: { type: 'string', default: 'flair', help: 'modality (or comma-separated modalities) the center lacks' },
    size: { type: 'string', default: '32', help: 'image size (square; a multiple of 4, at least 16)' },
    nodes: { type: 'string', default: '3', help: 'how the data set is split into centers' },
    node: { type: 'string', help: 'train on this center only (0-based); default: all training data pooled' },
    'batch-size': { type: 'string', default: '16', help: 'batch size' },
    'hide-probability': { type: 'string', default: '0.5', help: 'chance that a modality is hidden from a training sample (at least one always is)' },
    focus: { type: 'string', default: '1', help: 'share of training samples that hide exactly --missing (the rest: a random subset; 0.5 and 0.8 measured worse, README)' },
    'no-residual': { type: 'boolean', default: false, help: 'the network alone, not a residual over the per-class linear regression' },
    resume: { type: 'boolean', default: false, help: 'continue from OUT/complete_state.safetensors' },
    rows: { type: 'string', default: '6', help: 'held-out slices shown in complete.png' },
    out: { type: 'string', default: 'runs/complete', help: 'output folder' },
    ...ganOptions,
    dropout: { type: 'boolean', default: COMPLETION_GAN_DEFAULTS.dropout, help: 'resnet only: dropout in the generator blocks (pix2pix has it; off by default here)' },
    generator: { type: 'string', default: 'refiner', help: 'refiner (full-resolution convolutions) | resnet (the pix2pix ResnetGenerator)' },
    ngf: { type: 'string', default: String(COMPLETION_GAN_DEFAULTS.ngf), help: 'generator filters (refiner: every hidden layer; resnet: first layer)' },
    ndf: { type: 'string', default: String(COMPLETION_GAN_DEFAULTS.ndf), help: 'discriminator filters (reference 64)' },
    blocks: { type: 'string', default: String(COMPLETION_GAN_DEFAULTS.blocks), help: 'refiner: hidden 3x3 layers; resnet: residual blocks' },
    lr: { type: 'string', default: String(COMPLETION_GAN_DEFAULTS.lr), help: 'Adam learning rate (pix2pix uses 2e-4 for long runs)' },
    iters: { type: 'string', default: '600', help: 'training iterations' },
    'decay-iters': { type: 'string', help: 'final iterations with linear lr decay (default: half of --iters)' },
  }, argv);
  const cfg = ganConfig({
    ...v,
    'no-dropout': !v.dropout,
    'decay-iters': v['decay-iters'] ?? String(Math.floor(int(v, 'iters') / 2)),
  });
  const size = int(v, 'size');
  const batchSize = int(v, 'batch-size');
  const hide = num(v, 'hide-probability');
  if (!(hide > 0 && hide <= 1)) throw new UsageError('--hide-probability must be in (0, 1]');
  const focus = num(v, 'focus');
  if (!(focus >= 0 && focus <= 1)) throw new UsageError('--focus must be in [0, 1]');
  const residual = !v['no-residual'];
  const generator = String(v.generator);
  if (generator !== 'refiner' && generator !== 'resnet') throw new UsageError(`--generator must be refiner or resnet, got "${generator}"`);
  const out = resolve(String(v.out));
  mkdirSync(out, { recursive: true });
  const started = Date.now();

  const data = await loadDataSource(String(v.data), { size, nodes: int(v, 'nodes'), seed: cfg.seed });
  const train: Dataset = v.node !== undefined ? data.nodes[int(v, 'node')]! : concatDatasets(data.nodes);
  if (!train) throw new UsageError(`--node ${v.node}: there are only ${data.nodes.length} centers`);
  const test = data.test;
  const M = train.modalities.length;
  if (M < 2) throw new UsageError(`completion needs at least 2 modalities; ${data.name} has [${train.modalities.join(', ')}]`);
  let missing: number[];
  try {
    missing = modalityChannels(train.modalities, String(v.missing));
  } catch (err) {
    throw new UsageError(`--missing: ${(err as Error).message}`);
  }
  if (missing.length === M) throw new UsageError('--missing: at least one modality must be given');
  const missingNames = modalityNames(train.modalities, missing);
  const given = [...Array(M).keys()].filter((m) => !missing.includes(m));
  const givenNames = modalityNames(train.modalities, given);

  const engine = await init();
  console.error(
    `asyndgan complete: ${train.slices.length} training slices (${data.name}), ${test.slices.length} held out, ${size}x${size}; ` +
      `given [${givenNames.join(', ')}], synthesizing [${missingNames.join(', ')}]; adapter ${engine.gpu.adapterName}`,
  );

  const model = new CompletionTrainer(cfg, train, {
    hideProbability: hide,
    residual,
    generator,
    ...(focus > 0 ? { focus: { available: availabilityWithout(M, missing), probability: focus } } : {}),
  });
  const t = model;
  const modules = { modules: { G: t.generator, D: t.discriminator }, optimizers: { G: t.optimizerG, D: t.optimizerD } };
  const statePath = join(out, 'complete_state.safetensors');
  const history: { iter: number; dReal: number; dFake: number; gGan: number; gL1: number }[] = [];
  if (v.resume && existsSync(statePath)) {
    const info = await loadTrainingState(statePath, modules);
    t.iter = Number(info.iter);
    history.push(...((info.history as typeof history) ?? []));
    console.error(`resumed at iteration ${t.iter}`);
  }
  const generatorPath = join(out, 'completion-generator.safetensors');
  const saveAll = async () => {
    await saveTrainingState(statePath, { ...modules, info: { iter: t.iter, history, config: cfg, residual, focus, hideProbability: hide } });
    await saveModule(generatorPath, model.generator, {
      asyndgan_completion_generator: JSON.stringify({
        config: cfg,
        iter: t.iter,
        generator,
        conditionChannels: completionChannels(train.numClasses, M),
        imageChannels: M,
        size,
        classNames: train.classNames,
        modalities: train.modalities,
        layout: residual
          ? 'one-hot mask (classes), modalities with missing ones filled by the per-class linear model (M), availability planes (M); output on missing channels = linear estimate + network output'
          : 'one-hot mask (classes), modalities with missing ones zeroed (M), availability planes (M); output on missing channels = network output',
        ...(residual ? { linearModel: model.linear.toJSON() } : {}),
      }),
    });
  };
  const progress = new Progress({ total: cfg.iters, label: 'complete: train', unit: 'it' });
  progress.update(t.iter);
  const logEvery = Math.max(1, Math.floor(cfg.iters / 100));
  const stop = new StopSignal('complete');
  try {
    await model.train(train, {
      batchSize,
      shouldStop: () => stop.requested,
      onStep: async (iter, losses) => {
        if (iter % logEvery === 0 || iter === cfg.iters) {
          const [dReal, dFake, gGan, gL1] = await Promise.all([losses.dReal.item(), losses.dFake.item(), losses.gGan.item(), losses.gL1.item()]);
          history.push({ iter, dReal, dFake, gGan, gL1 });
          progress.update(iter, { L1: gL1.toFixed(3), G: gGan.toFixed(3), D: ((dReal + dFake) / 2).toFixed(3) });
        } else {
          progress.update(iter);
        }
      },
    });
    await saveAll();
    if (stop.requested) {
      // Interrupted: state and generator are saved; the evaluation and pictures wait for the end.
      progress.log(`asyndgan complete: ${stop.received} at iteration ${t.iter}/${cfg.iters}: saved ${statePath} and ${generatorPath} (continue with --resume)`);
      return;
    }
  } finally {
    stop.dispose();
  }
  progress.finish();
  const trainSeconds = (Date.now() - started) / 1000;

  const result = await evaluateCompletion(model, train, test, missing);
  const grid = join(out, 'complete.png');
  await writeCompletionGrid(grid, test, result, missing, given, model.modalities, Math.min(int(v, 'rows'), test.slices.length), cfg.iters);
  const report = join(out, 'complete.json');
  await writeJsonAtomic(report, {
    data: data.name,
    trainSlices: train.slices.length,
    testSlices: test.slices.length,
    ...(v.node !== undefined ? { node: int(v, 'node') } : {}),
    size,
    config: cfg,
    batchSize,
    hideProbability: hide,
    focus,
    residual,
    generator,
    given: givenNames,
    missing: missingNames,
    metrics: result.evaluation.metrics,
    metricsNote: 'intensities in [-1, 1]; mae over every pixel, maeForeground over pixels of class != 0, psnr = 10 log10(2^2 / mse)',
    seconds: { train: trainSeconds, total: (Date.now() - started) / 1000 },
    history,
    files: { grid, generator: generatorPath, state: statePath },
  });
  for (const [name, m] of Object.entries(result.evaluation.metrics)) {
    const line = (label: string, x: { mae: number; psnr: number }) => `  ${label.padEnd(38)} MAE ${x.mae.toFixed(4)}  PSNR ${x.psnr.toFixed(2)} dB`;
    console.log(`${name} from [${givenNames.join(', ')}] on ${test.slices.length} held-out slices:`);
    console.log(line(residual ? 'completion (residual over linear)' : 'completion generator', m.completion));
    console.log(line('same generator, mask only', m.maskOnly));
    console.log(line('per-class mean (training data)', m.classMean));
    console.log(line('per-class linear on given modalities', m.classLinear));
  }
  console.log(`grid: ${grid}`);
  console.log(`report: ${report}`);
}

/** One row per held-out slice: mask, given modalities, then per missing modality real, synthesized and baselines. */
async function writeCompletionGrid(
  path: string,
  test: Dataset,
  r: CompletionResult,
  missing: readonly number[],
  given: readonly number[],
  modalities: readonly string[],
  rows: number,
  iters: number,
): Promise<void> {
  const { width: W, height: H } = test;
  const HW = W * H;
  const M = modalities.length;
  const tile = (v: Float32Array) => fromFloat(v, W, H, '-1..1');
  const tiles: RgbImage[] = [];
  for (let n = 0; n < rows; n++) {
    const s = test.slices[n]!;
    tiles.push(labelsToImage(s.mask, W, H));
    for (const g of given) tiles.push(tile(s.image.subarray(g * HW, (g + 1) * HW)));
    missing.forEach((m, k) => {
      tiles.push(tile(s.image.subarray(m * HW, (m + 1) * HW)));
      tiles.push(tile(r.completed.subarray((n * M + m) * HW, (n * M + m + 1) * HW)));
      tiles.push(tile(r.maskOnly.subarray((n * M + m) * HW, (n * M + m + 1) * HW)));
      tiles.push(tile(r.classMean[k]!.subarray(n * HW, (n + 1) * HW)));
      tiles.push(tile(r.classLinear[k]!.subarray(n * HW, (n + 1) * HW)));
    });
  }
  const colLabels = [
    'mask',
    ...given.map((g) => `given ${modalities[g]}`),
    ...missing.flatMap((m) => [`real ${modalities[m]}`, `synth ${modalities[m]}`, 'mask only', 'class mean', 'class linear']),
  ];
  const scale = W < 48 ? 3 : W < 96 ? 2 : 1;
  await saveImagePng(path, composeGrid(tiles, {
    cols: colLabels.length,
    colLabels,
    rowLabels: test.slices.slice(0, rows).map((s) => s.key),
    title: `missing-modality completion after ${iters} iterations (held-out slices)`,
    scale,
  }));
}
