/**
 * This engine's side of the benchmark. Every run ends with `await engine().sync()` (all recorded
 * work submitted and finished on the device; nothing read back). Gradients go through autograd:
 * `backward(y, dy)` then `.grad`, with the forward recorded untimed in `prepare()` for the
 * gradient-only modes.
 */
import { backward, noGrad } from '../../src/engine/autograd.js';
import { engine } from '../../src/engine/engine.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { keep } from '../../src/engine/scope.js';
import { randn } from '../../src/engine/ops/create.js';
import { conv2d } from '../../src/engine/ops/conv.js';
import { matmul } from '../../src/engine/ops/matmul.js';
import { batchNorm2d, instanceNorm2d } from '../../src/engine/ops/norm.js';
import { Adam } from '../../src/engine/optim.js';
import { ResnetGenerator } from '../../src/models/resnet-generator.js';
import { discriminatorStep, generatorStep, makeFake, makeGan } from './gan-step.js';
import type { Runner, StepMemory } from './harness.js';
import { convOut, type Workload } from './workloads.js';

const sync = () => engine().sync();
const input = (shape: number[], seed: number, std = 1) => keep(randn(shape, seed, std));

function dropGrads(...ts: Tensor[]): void {
  for (const t of ts) {
    t.grad?.dispose();
    t.grad = null;
  }
}

/** Parameter shapes of the reference generator (resnet_9blocks, ngf 64, 3->3, batch norm). */
export function generatorParamShapes(): number[][] {
  const g = new ResnetGenerator(3, 3, { ngf: 64, blocks: 9, norm: 'batch', seed: 1 });
  const shapes = g.parameters().map((p) => [...p.shape]);
  g.dispose();
  return shapes;
}

export type MatmulFn = (a: Tensor, b: Tensor) => Tensor;

/**
 * Pool counters around each run. The first two steps fill the pool (the second still meets the
 * first's gradients and Adam moments alive while it allocates), so steady state starts at the third.
 */
const WARMUP_STEPS = 2;

function trackMemory() {
  const pool = engine().pool;
  let runs = 0;
  let createdAfterWarmup = 0;
  let peak = 0;
  return {
    before() {
      if (runs === WARMUP_STEPS) createdAfterWarmup = pool.stats.created;
      pool.resetPeak();
    },
    after() {
      peak = Math.max(peak, pool.stats.peakBytesInUse);
      runs++;
    },
    report: (): StepMemory => ({
      peakBytesInUse: peak,
      bytesAllocated: pool.stats.bytesAllocated,
      steadySteps: Math.max(0, runs - WARMUP_STEPS),
      buffersCreatedInSteadySteps: runs > WARMUP_STEPS ? pool.stats.created - createdAfterWarmup : 0,
    }),
  };
}

/** A runner for this engine, or a reason why there is none. */
export async function oursRunner(w: Workload, mode: string, adamShapes: number[][]): Promise<Runner | string> {
  switch (w.kind) {
    case 'conv': {
      const s = w.spec;
      const [oh, ow] = convOut(s);
      const x = input([s.n, s.ci, s.h, s.w], 1);
      const wt = input([s.co, s.ci, s.k, s.k], 2, 0.05);
      const dy = input([s.n, s.co, oh, ow], 3);
      const opts = { stride: s.stride, padding: s.pad };
      const all = [x, wt, dy];
      let y: Tensor | null = null;
      const dispose = () => {
        y?.dispose();
        dropGrads(x, wt);
        all.forEach((t) => t.dispose());
      };
      if (mode === 'fwd') {
        return {
          async run() {
            y = noGrad(() => conv2d(x, wt, null, opts));
            await sync();
          },
          after: () => y?.dispose(),
          dispose,
        };
      }
      if (mode === 'dgrad' || mode === 'wgrad') {
        x.requiresGrad = mode === 'dgrad';
        wt.requiresGrad = mode === 'wgrad';
        return {
          async prepare() {
            y = conv2d(x, wt, null, opts);
            await sync();
          },
          async run() {
            backward(y!, dy);
            await sync();
          },
          after() {
            y?.dispose();
            dropGrads(x, wt);
          },
          dispose,
        };
      }
      x.requiresGrad = true;
      wt.requiresGrad = true;
      return {
        async run() {
          y = conv2d(x, wt, null, opts);
          backward(y, dy);
          await sync();
        },
        after() {
          y?.dispose();
          dropGrads(x, wt);
        },
        dispose,
      };
    }
    case 'matmul': {
      const mm: MatmulFn = (x, y) => matmul(x, y);
      const a = input([w.m, w.k], 1);
      const b = input([w.k, w.n], 2);
      let c: Tensor | null = null;
      return {
        async run() {
          c = noGrad(() => mm(a, b));
          await sync();
        },
        after: () => c?.dispose(),
        dispose: () => [a, b].forEach((t) => t.dispose()),
      };
    }
    case 'norm': {
      const [n, ch, h, wd] = w.shape;
      const x = input([n, ch, h, wd], 1);
      const dy = input([n, ch, h, wd], 2);
      const weight = w.norm === 'batch' ? input([ch], 3) : null;
      const bias = w.norm === 'batch' ? input([ch], 4) : null;
      const rm = w.norm === 'batch' ? input([ch], 5, 0) : null;
      const rv = w.norm === 'batch' ? keep(randn([ch], 6, 0, 1)) : null;
      const params = [x, weight, bias].filter((t): t is Tensor => t !== null);
      const forward = () =>
        w.norm === 'batch' ? batchNorm2d(x, weight, bias, rm, rv, { training: true }) : instanceNorm2d(x, null, null);
      const train = mode === 'train';
      for (const p of params) p.requiresGrad = train;
      let y: Tensor | null = null;
      return {
        async run() {
          if (train) {
            y = forward();
            backward(y, dy);
          } else {
            y = noGrad(forward);
          }
          await sync();
        },
        after() {
          y?.dispose();
          dropGrads(...params);
        },
        dispose: () => [x, dy, weight, bias, rm, rv].forEach((t) => t?.dispose()),
      };
    }
    case 'adam': {
      const params = adamShapes.map((s, i) => {
        const p = input(s, 100 + i, 0.02);
        p.requiresGrad = true;
        p.grad = input(s, 1000 + i, 1e-3);
        return p;
      });
      const opt = new Adam(params, { lr: 2e-4, betas: [0.5, 0.999] });
      return {
        async run() {
          opt.step();
          await sync();
        },
        dispose() {
          opt.zeroGrad();
          opt.dispose();
          params.forEach((p) => p.dispose());
        },
      };
    }
    case 'gan': {
      const gan = makeGan(w.gan);
      const fake = w.part === 'generator' ? null : makeFake(gan);
      const step = fake ? () => discriminatorStep(gan, fake) : () => generatorStep(gan);
      const memory = trackMemory();
      // The recorder counts every dispatch it records: the delta around one step is that step's count.
      const recorder = engine().recorder;
      const dispatches: number[] = [];
      return {
        async run() {
          memory.before();
          const d0 = recorder.dispatches;
          step();
          await sync();
          dispatches.push(recorder.dispatches - d0);
          memory.after();
        },
        memory: () => memory.report(),
        dispatches: () => dispatches,
        dispose() {
          fake?.dispose();
          gan.dispose();
        },
      };
    }
  }
}
