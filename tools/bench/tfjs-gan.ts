/**
 * The AsynDGAN generator and discriminator steps written with tfjs ops (NHWC), for the step
 * comparison: ResnetGenerator (reflection padding, batch norm with batch statistics, residual
 * blocks, transposed convolutions, tanh) and PatchDiscriminator (4x4 convolutions, LeakyReLU 0.2),
 * BCE-with-logits + lambda x L1, Adam (2e-4, 0.5, 0.999). Same layer list and work as
 * src/models (and tools/bench/gan-step.ts); running statistics and dropout are left out (they are
 * off in the benchmark's configuration or cost nothing measurable).
 */
import type * as TF from '@tensorflow/tfjs';
import type { GanShape } from './gan-step.js';
import type { Runner } from './harness.js';
import type { TfjsPeer } from './tfjs.js';

type T4 = TF.Tensor4D;

interface Layer {
  kind: 'conv' | 'convT' | 'bn';
  w?: TF.Variable;
  b?: TF.Variable;
  gamma?: TF.Variable;
  beta?: TF.Variable;
  stride: number;
  pad: number;
}

function builder(tf: typeof TF, seed: number) {
  let s = seed;
  const vars: TF.Variable[] = [];
  const v = (t: TF.Tensor) => {
    const x = tf.variable(t, true, `v${seed}_${vars.length}`);
    vars.push(x);
    return x;
  };
  const conv = (ci: number, co: number, k: number, stride: number, pad: number, bias: boolean): Layer => ({
    kind: 'conv',
    w: v(tf.randomNormal([k, k, ci, co], 0, 0.02, 'float32', s++)),
    ...(bias ? { b: v(tf.zeros([co])) } : {}),
    stride,
    pad,
  });
  // tfjs conv2dTranspose filters are [k, k, outChannels, inChannels].
  const convT = (ci: number, co: number, k: number, stride: number): Layer => ({
    kind: 'convT',
    w: v(tf.randomNormal([k, k, co, ci], 0, 0.02, 'float32', s++)),
    stride,
    pad: 0,
  });
  const bn = (c: number): Layer => ({
    kind: 'bn',
    gamma: v(tf.randomNormal([c], 1, 0.02, 'float32', s++)),
    beta: v(tf.zeros([c])),
    stride: 1,
    pad: 0,
  });
  return { vars, conv, convT, bn };
}

export function tfjsGan(tf: typeof TF, s: GanShape) {
  if (s.norm !== 'batch') throw new Error('tfjs GAN step: only batch norm is implemented');
  const G = builder(tf, 10);
  const D = builder(tf, 20);
  const { ngf, ndf } = s;
  const g = {
    c0: G.conv(s.inC, ngf, 7, 1, 0, false), n0: G.bn(ngf),
    d1: G.conv(ngf, 2 * ngf, 3, 2, 1, false), n1: G.bn(2 * ngf),
    d2: G.conv(2 * ngf, 4 * ngf, 3, 2, 1, false), n2: G.bn(4 * ngf),
    blocks: Array.from({ length: s.blocks }, () => ({
      c1: G.conv(4 * ngf, 4 * ngf, 3, 1, 0, false), n1: G.bn(4 * ngf),
      c2: G.conv(4 * ngf, 4 * ngf, 3, 1, 0, false), n2: G.bn(4 * ngf),
    })),
    u1: G.convT(4 * ngf, 2 * ngf, 3, 2), m1: G.bn(2 * ngf),
    u2: G.convT(2 * ngf, ngf, 3, 2), m2: G.bn(ngf),
    out: G.conv(ngf, s.outC, 7, 1, 0, true),
  };
  const dl: Layer[][] = [[D.conv(s.inC + s.outC, ndf, 4, 2, 1, true)]];
  let mult = 1;
  for (let n = 1; n < s.layers; n++) {
    const prev = mult;
    mult = Math.min(2 ** n, 8);
    dl.push([D.conv(ndf * prev, ndf * mult, 4, 2, 1, false), D.bn(ndf * mult)]);
  }
  const prev = mult;
  mult = Math.min(2 ** s.layers, 8);
  dl.push([D.conv(ndf * prev, ndf * mult, 4, 1, 1, false), D.bn(ndf * mult)]);
  const last = D.conv(ndf * mult, 1, 4, 1, 1, true);

  const apply = (l: Layer, x: T4): T4 => {
    if (l.kind === 'bn') {
      const m = tf.moments(x, [0, 1, 2]);
      return tf.batchNorm(x, m.mean as TF.Tensor1D, m.variance as TF.Tensor1D, l.beta as TF.Tensor1D, l.gamma as TF.Tensor1D, 1e-5);
    }
    if (l.kind === 'convT') {
      const [n, h, w] = x.shape;
      const co = l.w!.shape[2]!;
      return tf.conv2dTranspose(x, l.w as TF.Tensor4D, [n, 2 * h, 2 * w, co], [l.stride, l.stride], 'same');
    }
    const pad = [[0, 0], [l.pad, l.pad], [l.pad, l.pad], [0, 0]] as TF.backend_util.ExplicitPadding;
    const y = tf.conv2d(x, l.w as TF.Tensor4D, [l.stride, l.stride], l.pad > 0 ? pad : 'valid');
    return l.b ? tf.add(y, l.b) : y;
  };
  const reflect = (x: T4, p: number): T4 => tf.mirrorPad(x, [[0, 0], [p, p], [p, p], [0, 0]], 'reflect');

  const generator = (x: T4): T4 => {
    let h = tf.relu(apply(g.n0, apply(g.c0, reflect(x, 3))));
    h = tf.relu(apply(g.n1, apply(g.d1, h)));
    h = tf.relu(apply(g.n2, apply(g.d2, h)));
    for (const b of g.blocks) {
      const r = tf.relu(apply(b.n1, apply(b.c1, reflect(h, 1))));
      h = tf.add(h, apply(b.n2, apply(b.c2, reflect(r, 1))));
    }
    h = tf.relu(apply(g.m1, apply(g.u1, h)));
    h = tf.relu(apply(g.m2, apply(g.u2, h)));
    return tf.tanh(apply(g.out, reflect(h, 3)));
  };
  const discriminator = (x: T4): T4 => {
    let h = x;
    for (const layer of dl) {
      for (const l of layer) h = apply(l, h);
      h = tf.leakyRelu(h, 0.2);
    }
    return apply(last, h);
  };
  // mean(max(x, 0) - x t + log(1 + exp(-|x|))), as the engine's bceWithLogits.
  const bce = (x: TF.Tensor, target: number): TF.Scalar =>
    tf.mean(tf.add(tf.sub(tf.relu(x), tf.mul(x, target)), tf.log1p(tf.exp(tf.neg(tf.abs(x))))));
  const l1 = (a: TF.Tensor, b: TF.Tensor): TF.Scalar => tf.mean(tf.abs(tf.sub(a, b)));
  return { gVars: G.vars, dVars: D.vars, generator, discriminator, bce, l1 };
}

/** The tfjs generator or discriminator step as a benchmark runner. */
export function tfjsGanRunner(peer: TfjsPeer, s: GanShape, part: 'generator' | 'discriminator'): Runner {
  const { tf } = peer;
  const net = tfjsGan(tf, s);
  const mask = tf.randomUniform([s.batch, s.size, s.size, s.inC], 0, 1, 'float32', 2) as T4;
  const real = tf.randomUniform([s.batch, s.size, s.size, s.outC], -1, 1, 'float32', 3) as T4;
  const optG = tf.train.adam(2e-4, 0.5, 0.999, 1e-8);
  const optD = tf.train.adam(2e-4, 0.5, 0.999, 1e-8);
  const fake = part === 'discriminator' ? tf.tidy(() => net.generator(mask)) : null;
  const step =
    part === 'generator'
      ? () =>
          tf.tidy(() => {
            const { grads } = tf.variableGrads(() => {
              const f = net.generator(mask);
              const pred = net.discriminator(tf.concat([mask, f], 3) as T4);
              return tf.add(net.bce(pred, 1), tf.mul(net.l1(f, real), s.lambdaL1)) as TF.Scalar;
            }, net.gVars);
            optG.applyGradients(grads as Parameters<typeof optG.applyGradients>[0]);
          })
      : () =>
          tf.tidy(() => {
            const { grads } = tf.variableGrads(() => {
              const dReal = net.bce(net.discriminator(tf.concat([mask, real], 3) as T4), 1);
              const dFake = net.bce(net.discriminator(tf.concat([mask, fake!], 3) as T4), 0);
              return tf.mul(tf.add(dReal, dFake), 0.5) as TF.Scalar;
            }, net.dVars);
            optD.applyGradients(grads as Parameters<typeof optD.applyGradients>[0]);
          });
  return {
    async run() {
      step();
      await peer.sync();
    },
    dispose() {
      [mask, real, fake].forEach((t) => t?.dispose());
      [...net.gVars, ...net.dVars].forEach((v) => v.dispose());
      optG.dispose();
      optD.dispose();
    },
  };
}
