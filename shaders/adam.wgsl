// Fused multi-tensor Adam / AdamW update: the elements [off, off + n) of the optimizer's arenas
// (parameters, gradients, moments of many tensors back to back; optim.ts) (PyTorch's algorithm, torch.optim.Adam and
// torch.optim.AdamW, amsgrad off). The step-dependent scalars (bias corrections, step size,
// decoupled decay factor) are computed on the CPU in float64 and passed in the uniform block:
//   g     = grad + l2 * param                      (Adam's L2 weight decay; l2 = 0 for AdamW)
//   m     = m + (1 - beta1) * (g - m)               (= beta1 m + (1 - beta1) g)
//   v     = beta2 v + (1 - beta2) g^2
//   param = decay * param - step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// with step_size = lr / (1 - beta1^t) and decay = 1 - lr * weight_decay for AdamW (1 for Adam).
// Four elements per invocation: arena slots are 64-element aligned, so `n` and `off` (counted in
// vec4 here) always are; on lavapipe a vec4 load costs about half as much per element as a scalar one.

override WG: u32 = 256u;

struct AdamParams {
  n: u32,    // vec4 elements
  beta2: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
  step_size: f32,
  bc2_sqrt: f32,
  eps: f32,
  l2: f32,
  decay: f32,
  off: u32,  // first vec4 element
}

@group(0) @binding(0) var<uniform> ap: AdamParams;
@group(0) @binding(1) var<storage, read_write> param: array<vec4f>;
@group(0) @binding(2) var<storage, read> grad: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> v: array<vec4f>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let j = gid.x + gid.y * groups.x * WG;
  if (j >= ap.n) { return; }
  let i = ap.off + j;
  let p = param[i];
  let g = grad[i] + ap.l2 * p;
  let m0 = m[i];
  let mi = m0 + ap.one_minus_beta1 * (g - m0);
  let vi = ap.beta2 * v[i] + ap.one_minus_beta2 * g * g;
  m[i] = mi;
  v[i] = vi;
  let denom = sqrt(vi) / ap.bc2_sqrt + ap.eps;
  param[i] = ap.decay * p - ap.step_size * (mi / denom);
}
