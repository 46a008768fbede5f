/**
 * Embedding the engine in an application: a two-layer convolutional network learns to turn a
 * mask into an image (a miniature of what the AsynDGAN generator does), trained with Adam.
 *
 *   node --import tsx examples/train-tiny.ts
 */
import {
  Adam, backward, conv2d, init, keep, l1Loss, normal_, parameter, relu, tanh, tensor, tidy, zeros, type Tensor,
} from '../src/engine/index.js';

const engine = await init();
console.log(`adapter: ${engine.gpu.adapterName}`);

// Data: 4 masks (a disc of varying radius) and "images" (a smooth ramp inside the disc).
const N = 4, S = 24;
const masks = new Float32Array(N * S * S);
const images = new Float32Array(N * S * S);
for (let n = 0; n < N; n++) {
  for (let y = 0; y < S; y++) {
    for (let x = 0; x < S; x++) {
      const r = Math.hypot(x - S / 2, y - S / 2);
      const inside = r < 4 + 2 * n;
      masks[n * S * S + y * S + x] = inside ? 1 : 0;
      images[n * S * S + y * S + x] = inside ? 0.8 - r / 20 : -0.9;
    }
  }
}
const mask = tensor(masks, [N, 1, S, S]);
const image = tensor(images, [N, 1, S, S]);

// Parameters: modules in src/models wrap exactly this; here we keep it bare.
const w1 = keep(parameter(normal_(zeros([16, 1, 3, 3]), 0, 0.3, 1)));
const b1 = keep(parameter(zeros([16])));
const w2 = keep(parameter(normal_(zeros([1, 16, 3, 3]), 0, 0.1, 2)));
const b2 = keep(parameter(zeros([1])));
const optimizer = new Adam([w1, b1, w2, b2], { lr: 1e-2, betas: [0.9, 0.999] });

const forward = (m: Tensor) => tanh(conv2d(relu(conv2d(m, w1, b1, { padding: 1 })), w2, b2, { padding: 1 }));

for (let step = 1; step <= 60; step++) {
  const loss = tidy(() => {
    optimizer.zeroGrad();
    const l = l1Loss(forward(mask), image);
    backward(l);
    optimizer.step();
    return l;
  });
  // Reading the loss waits for the GPU: do it only when you want to show it.
  if (step % 10 === 0 || step === 1) console.log(`step ${step}: L1 ${(await loss.item()).toFixed(4)}`);
  loss.dispose();
}
console.log(`GPU buffers created: ${engine.pool.stats.created}, submissions: ${engine.recorder.submits}`);
