/**
 * `asyndgan synth --checkpoint G.safetensors --masks DIR --out DIR`: turns label maps into images
 * with a trained generator. PNG label maps (pixel value = class id) give one PNG per modality;
 * NIfTI label volumes (.nii, .nii.gz) give one NIfTI volume per modality, synthesized axial slice
 * by axial slice at the training size and resized back to the volume's grid.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { init, noGrad, tensor, tidy } from '../engine/index.js';
import { resizeBilinear, resizeNearest, loadNifti, writeNifti } from '../data/index.js';
import { readPng, saveImagePng, fromFloat } from '../io/index.js';
import { ResnetGenerator, loadModule } from '../models/index.js';
import { loadSafetensors } from '../io/safetensors.js';
import { makeOutputDir, parseOptions, UsageError } from './options.js';
import { Progress } from './progress.js';
import type { GeneratorInfo } from './train.js';

export async function synthCommand(argv: string[]): Promise<void> {
  const v = parseOptions('synth', '--checkpoint FILE --masks DIR --out DIR', {
    checkpoint: { type: 'string', help: 'generator.safetensors written by train or server' },
    masks: { type: 'string', help: 'folder of label maps: PNG (pixel = class id) or NIfTI volumes' },
    out: { type: 'string', help: 'output folder' },
    resize: { type: 'boolean', default: false, help: 'accept PNG masks of another size: resample them to the generator\'s size and the images back' },
  }, argv);
  if (!v.checkpoint || !v.masks || !v.out) throw new UsageError('synth needs --checkpoint, --masks and --out (see --help)');
  if (!existsSync(String(v.checkpoint))) throw new UsageError(`--checkpoint ${v.checkpoint}: no such file`);
  if (!existsSync(String(v.masks)) || !statSync(String(v.masks)).isDirectory()) throw new UsageError(`--masks ${v.masks}: no such folder`);
  const info = await readGeneratorInfo(String(v.checkpoint));
  const dir = String(v.masks);
  const out = String(v.out);
  makeOutputDir(out);
  const files = readdirSync(dir).filter((f) => /\.(png|nii|nii\.gz)$/i.test(f)).sort();
  if (files.length === 0) throw new UsageError(`--masks ${dir}: no .png, .nii or .nii.gz label maps`);
  // Every mask is checked before the engine starts, so a bad one costs nothing and is named.
  for (const file of files) await checkMaskFile(join(dir, file), info, Boolean(v.resize));
  await init();
  const g = new ResnetGenerator(info.conditionChannels, info.imageChannels, {
    ngf: info.config.ngf,
    blocks: info.config.blocks,
    norm: info.config.norm,
    dropout: info.config.dropout,
  });
  await loadModule(String(v.checkpoint), g);
  g.eval();
  const generate = async (file: string, labels: Uint8Array, h: number, w: number): Promise<Float32Array> => {
    const s = info.size;
    const small = h === s && w === s ? labels : resizeNearest(labels, h, w, s, s);
    const onehot = new Float32Array(info.conditionChannels * s * s);
    small.forEach((c, i) => {
      if (c >= info.conditionChannels) {
        throw new Error(`${file}: label ${c} at pixel ${i % s},${Math.floor(i / s)} is outside the generator's classes 0..${info.conditionChannels - 1}`);
      }
      onehot[c * s * s + i] = 1;
    });
    const fake = noGrad(() => tidy(() => g.forward(tensor(onehot, [1, info.conditionChannels, s, s]))));
    const out = await fake.read();
    fake.dispose();
    return h === s && w === s ? out : resizeBilinear(out, s, s, h, w, info.imageChannels);
  };

  const progress = new Progress({ total: files.length, label: 'synth', unit: 'file' });
  for (const file of files) {
    const path = join(dir, file);
    const stem = basename(file).replace(/\.(png|nii\.gz|nii)$/i, '');
    if (/\.png$/i.test(file)) {
      const png = await readPng(path);
      const labels = new Uint8Array(png.width * png.height);
      for (let i = 0; i < labels.length; i++) labels[i] = png.data[i * png.channels]!;
      const img = await generate(path, labels, png.height, png.width);
      const plane = png.width * png.height;
      for (const [m, name] of info.modalities.entries()) {
        await saveImagePng(join(out, `${stem}_${name}.png`), fromFloat(img.subarray(m * plane, (m + 1) * plane), png.width, png.height, '-1..1'));
      }
    } else {
      const vol = await loadNifti(path);
      const [X, Y, Z] = vol.dims;
      const outs = info.modalities.map(() => new Float32Array(X * Y * Z));
      for (let z = 0; z < Z; z++) {
        // NIfTI stores x fastest; take the slice as rows of y, columns of x (no flip: written back the same way).
        const labels = new Uint8Array(X * Y);
        for (let i = 0; i < X * Y; i++) labels[i] = Math.round(vol.data[z * X * Y + i]!);
        const img = await generate(`${path} slice ${z}`, labels, Y, X);
        outs.forEach((o, m) => o.set(img.subarray(m * X * Y, (m + 1) * X * Y), z * X * Y));
      }
      for (const [m, name] of info.modalities.entries()) {
        await writeNifti(join(out, `${stem}_${name}.nii.gz`), { dims: vol.dims, data: outs[m]!, pixdim: vol.pixdim, affine: vol.affine, datatype: 'float32' });
      }
    }
    progress.tick(1);
  }
  progress.finish();
  console.log(`synth: ${files.length} files -> ${out}`);
}

/** Refuses, naming the file, a label outside the generator's classes or a PNG of another size (without --resize). */
async function checkMaskFile(path: string, info: GeneratorInfo, resize: boolean): Promise<void> {
  let labels: ArrayLike<number>;
  let dims: readonly number[];
  if (/\.png$/i.test(path)) {
    const png = await readPng(path);
    if ((png.width !== info.size || png.height !== info.size) && !resize) {
      throw new UsageError(`${path}: the mask is ${png.width}x${png.height}, the generator makes ${info.size}x${info.size} images (--resize resamples masks to that size and the images back)`);
    }
    labels = Uint8Array.from({ length: png.width * png.height }, (_, i) => png.data[i * png.channels]!);
    dims = [png.width, png.height];
  } else {
    const vol = await loadNifti(path);
    labels = vol.data;
    dims = vol.dims;
  }
  for (let i = 0; i < labels.length; i++) {
    const c = Math.round(labels[i]!);
    if (!(c >= 0 && c < info.conditionChannels)) {
      const at = dims.length === 2 ? [i % dims[0]!, Math.floor(i / dims[0]!)] : [i % dims[0]!, Math.floor(i / dims[0]!) % dims[1]!, Math.floor(i / (dims[0]! * dims[1]!))];
      throw new UsageError(`${path}: label ${labels[i]} at ${dims.length === 2 ? 'pixel' : 'voxel'} ${at.join(',')} is outside the generator's classes 0..${info.conditionChannels - 1}`);
    }
  }
}

async function readGeneratorInfo(path: string): Promise<GeneratorInfo> {
  const file = await loadSafetensors(path);
  const text = file.metadata.asyndgan_generator;
  if (!text) throw new Error(`${path}: no "asyndgan_generator" metadata: not a generator written by asyndgan train/server`);
  return JSON.parse(text) as GeneratorInfo;
}
