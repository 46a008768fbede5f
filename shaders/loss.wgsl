// Loss kernels: per-element losses (BCE with logits, L1, MSE), per-pixel softmax cross-entropy
// and soft Dice. Every forward is a fused per-element pass that writes one partial sum per
// workgroup (grid-stride loop, tree reduction in workgroup memory), followed by a one-workgroup
// `finish` pass that adds the partials and writes the scalar loss. Gradients are one elementwise
// (or per-pixel) pass that reads the upstream gradient from a 1-element buffer (no readback).

override WG: u32 = 256u;
// Per-element loss: 0 = BCE with logits, 1 = L1, 2 = MSE.
override LOSS: u32 = 0u;
// The target is the uniform constant `tconst` instead of a tensor (the target binding then
// aliases the prediction and is never read).
override T_CONST: bool = false;
// Restrict the loss to the channels (dim 1) whose bit is set in m0..m3.
override MASKED: bool = false;
// Cross-entropy: per-class weights in the uniform block.
override HAS_W: bool = false;
// Cross-entropy: normalize by the sum of the weights of the valid pixels (PyTorch) instead of
// by their number.
override NORM_W: bool = false;

// ---------------------------------------------------------------------------------------------
// Shared workgroup reduction.

// #include "wg_sum.wgsl"

// ---------------------------------------------------------------------------------------------
// Per-element losses.

struct PointParams {
  n: u32,
  inner: u32,     // elements per channel (product of dims 2..)
  channels: u32,  // size of dim 1
  tconst: f32,    // constant target (T_CONST)
  scale: f32,     // gradient kernels: 1 / number of selected elements
  m0: u32, m1: u32, m2: u32, m3: u32,  // channel bit mask (MASKED)
}

@group(0) @binding(0) var<uniform> pp: PointParams;
@group(0) @binding(1) var<storage, read> pred: array<f32>;
@group(0) @binding(2) var<storage, read> tgt: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<f32>;
@group(0) @binding(3) var<storage, read> gout3: array<f32>;
@group(0) @binding(4) var<storage, read_write> gin4: array<f32>;

fn selected(i: u32) -> bool {
  if (!MASKED) { return true; }
  let c = (i / pp.inner) % pp.channels;
  var w: u32;
  switch c / 32u {
    case 0u: { w = pp.m0; }
    case 1u: { w = pp.m1; }
    case 2u: { w = pp.m2; }
    default: { w = pp.m3; }
  }
  return ((w >> (c % 32u)) & 1u) == 1u;
}

fn target_at(i: u32) -> f32 {
  if (T_CONST) { return pp.tconst; }
  return tgt[i];
}

// log(1 + z) for z >= 0, accurate to a few ulp also for tiny z. (Tricks that rely on exact
// rounding, like log(u) * z / (u - 1), are folded away by fast-math compilers such as llvmpipe's.)
// Below 0.25: log1p(z) = 2 atanh(s), s = z / (2 + z) <= 1/9, by its odd series (error < s^11).
fn log1p_pos(z: f32) -> f32 {
  if (z >= 0.25) { return log(1.0 + z); }
  let s = z / (2.0 + z);
  let s2 = s * s;
  return 2.0 * s * (1.0 + s2 * (1.0 / 3.0 + s2 * (0.2 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0)))));
}

fn point_loss(x: f32, t: f32) -> f32 {
  switch LOSS {
    // max(x, 0) - x t + log(1 + exp(-|x|)): never overflows, exact limits for large |x|.
    case 0u: { return max(x, 0.0) - x * t + log1p_pos(exp(-abs(x))); }
    case 1u: { return abs(x - t); }
    default: { let d = x - t; return d * d; }
  }
}

fn point_dpred(x: f32, t: f32) -> f32 {
  switch LOSS {
    // sigmoid(x) - t, written so that neither term rounds to 1 (exact far from 0).
    case 0u: {
      if (x >= 0.0) { let e = exp(-x); return (1.0 - t) - e / (1.0 + e); }
      let e = exp(x);
      return e / (1.0 + e) - t;
    }
    case 1u: { return sign(x - t); }
    default: { return 2.0 * (x - t); }
  }
}

fn point_dtarget(x: f32, t: f32) -> f32 {
  switch LOSS {
    case 0u: { return -x; }
    case 1u: { return -sign(x - t); }
    default: { return -2.0 * (x - t); }
  }
}

// partials[workgroup] = sum of the losses of this workgroup's elements (grid-stride, 1-D grid).
@compute @workgroup_size(WG)
fn point_partial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u,
                 @builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  var s = 0.0;
  let stride = groups.x * WG;
  for (var i = gid.x; i < pp.n; i += stride) {
    if (selected(i)) { s += point_loss(pred[i], target_at(i)); }
  }
  let total = wg_sum(lid, s);
  if (lid == 0u) { partials[wid.x] = total; }
}

fn flat(gid: vec3u, groups: vec3u) -> u32 {
  return gid.x + gid.y * groups.x * WG;
}

// gin4 = g * scale * dloss/dpred (0 outside the selected channels).
@compute @workgroup_size(WG)
fn point_grad_pred(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat(gid, groups);
  if (i >= pp.n) { return; }
  var d = 0.0;
  if (selected(i)) { d = gout3[0] * pp.scale * point_dpred(pred[i], target_at(i)); }
  gin4[i] = d;
}

// gin4 = g * scale * dloss/dtarget (tensor targets only).
@compute @workgroup_size(WG)
fn point_grad_target(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat(gid, groups);
  if (i >= pp.n) { return; }
  var d = 0.0;
  if (selected(i)) { d = gout3[0] * pp.scale * point_dtarget(pred[i], target_at(i)); }
  gin4[i] = d;
}

// ---------------------------------------------------------------------------------------------
// Final reduction of the partial sums (one workgroup).

struct FinishParams {
  count: u32,   // number of partial records
  stride: u32,  // floats per record
  scale: f32,
}

@group(0) @binding(0) var<uniform> fp: FinishParams;
@group(0) @binding(1) var<storage, read> parts: array<f32>;
@group(0) @binding(2) var<storage, read_write> result: array<f32>;
@group(0) @binding(3) var<storage, read_write> denom: array<f32>;

// result[0] = scale * sum(record[0]).
@compute @workgroup_size(WG)
fn finish(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  for (var k = lid; k < fp.count; k += WG) { s += parts[k * fp.stride]; }
  let total = wg_sum(lid, s);
  if (lid == 0u) { result[0] = total * fp.scale; }
}

// result[0] = scale * sum(record[0]) / sum(record[1]); denom[0] = sum(record[1]).
@compute @workgroup_size(WG)
fn finish_ratio(@builtin(local_invocation_index) lid: u32) {
  var s0 = 0.0;
  var s1 = 0.0;
  for (var k = lid; k < fp.count; k += WG) {
    s0 += parts[k * fp.stride];
    s1 += parts[k * fp.stride + 1u];
  }
  let t = wg_sum2(lid, vec2f(s0, s1));
  let t0 = t.x;
  let t1 = t.y;
  if (lid == 0u) {
    result[0] = t0 / t1 * fp.scale;
    denom[0] = t1;
  }
}

// ---------------------------------------------------------------------------------------------
// Softmax cross-entropy over dim 1 of [N, C, S] logits with [N, S] labels (class ids as f32).
// Labels outside [0, C) are ignored (no loss, no gradient, not counted).

struct CeParams {
  pixels: u32,  // N * S
  hw: u32,      // S
  classes: u32, // C
  pad: u32,
  w: array<vec4f, 16>,  // class weights (HAS_W), 4 per vec4: up to 64 classes
}

@group(0) @binding(0) var<uniform> cp: CeParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<f32>;
@group(0) @binding(3) var<storage, read_write> ce_parts: array<f32>;
@group(0) @binding(4) var<storage, read> ce_den: array<f32>;
@group(0) @binding(5) var<storage, read_write> ce_gin: array<f32>;

fn class_weight(c: u32) -> f32 {
  if (!HAS_W) { return 1.0; }
  return cp.w[c / 4u][c % 4u];
}

// Class id of a label, or `classes` (invalid) when it is not an id in [0, classes).
fn label_id(v: f32, classes: u32) -> u32 {
  let r = round(v);
  if (!(r >= 0.0) || r >= f32(classes)) { return classes; }
  return u32(r);
}

// Records of 2 floats per workgroup: (sum of w[y] * (lse - x_y), sum of normalizers).
@compute @workgroup_size(WG)
fn ce_partial(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u,
              @builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  var s = 0.0;
  var d = 0.0;
  let stride = groups.x * WG;
  let C = cp.classes;
  for (var p = gid.x; p < cp.pixels; p += stride) {
    let y = label_id(labels[p], C);
    if (y == C) { continue; }
    let base = (p / cp.hw) * C * cp.hw + p % cp.hw;
    // lse - x_y = (m - x_y) + log1p(r), r = sum of exp(x_c - m) over c other than the argmax,
    // which keeps confident (tiny) losses precise.
    var m = logits[base];
    var am = 0u;
    for (var c = 1u; c < C; c++) {
      let v = logits[base + c * cp.hw];
      if (v > m) { m = v; am = c; }
    }
    var r = 0.0;
    for (var c = 0u; c < C; c++) {
      if (c != am) { r += exp(logits[base + c * cp.hw] - m); }
    }
    let w = class_weight(y);
    s += w * ((m - logits[base + y * cp.hw]) + log1p_pos(r));
    d += select(1.0, w, NORM_W);
  }
  let t = wg_sum2(lid, vec2f(s, d));
  let t0 = t.x;
  let t1 = t.y;
  if (lid == 0u) {
    ce_parts[2u * wid.x] = t0;
    ce_parts[2u * wid.x + 1u] = t1;
  }
}

// ce_gin[n, c, s] = g / den * w[y] * (softmax_c - [c == y]); one thread per pixel.
@compute @workgroup_size(WG)
fn ce_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let p = flat(gid, groups);
  if (p >= cp.pixels) { return; }
  let C = cp.classes;
  let base = (p / cp.hw) * C * cp.hw + p % cp.hw;
  let y = label_id(labels[p], C);
  if (y == C) {
    for (var c = 0u; c < C; c++) { ce_gin[base + c * cp.hw] = 0.0; }
    return;
  }
  var m = logits[base];
  for (var c = 1u; c < C; c++) { m = max(m, logits[base + c * cp.hw]); }
  var se = 0.0;
  for (var c = 0u; c < C; c++) { se += exp(logits[base + c * cp.hw] - m); }
  let coef = gout3[0] / ce_den[0] * class_weight(y);
  let inv = 1.0 / se;
  for (var c = 0u; c < C; c++) {
    let q = exp(logits[base + c * cp.hw] - m) * inv;
    ce_gin[base + c * cp.hw] = coef * (q - select(0.0, 1.0, c == y));
  }
}

// ---------------------------------------------------------------------------------------------
// Soft Dice over classes c0..C-1: probabilities p = softmax over dim 1, one-hot labels y;
// per class I = sum p y, P = sum p, Y = sum y over all pixels of the batch;
// loss = 1 - mean_c (2 I + eps) / (P + Y + eps). Pixels with invalid labels are left out.

struct DiceParams {
  pixels: u32,
  hw: u32,
  classes: u32,
  groups: u32,  // pixel chunks of dice_partial
  c0: u32,      // first class in the mean (1 with ignoreBackground)
  eps: f32,
  invk: f32,    // 1 / (C - c0)
}

@group(0) @binding(0) var<uniform> dp: DiceParams;
@group(0) @binding(1) var<storage, read> probs_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> probs_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> dice_parts: array<f32>;
@group(0) @binding(1) var<storage, read> dice_parts_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> stats_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> dice_result: array<f32>;
@group(0) @binding(3) var<storage, read> stats_in: array<f32>;
@group(0) @binding(5) var<storage, read_write> dice_gin: array<f32>;

// probs_out = softmax over classes of `logits` (binding 1 reused as the logits).
@compute @workgroup_size(WG)
fn softmax_probs(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let p = flat(gid, groups);
  if (p >= dp.pixels) { return; }
  let C = dp.classes;
  let base = (p / dp.hw) * C * dp.hw + p % dp.hw;
  var m = probs_in[base];
  for (var c = 1u; c < C; c++) { m = max(m, probs_in[base + c * dp.hw]); }
  var se = 0.0;
  for (var c = 0u; c < C; c++) {
    let e = exp(probs_in[base + c * dp.hw] - m);
    probs_out[base + c * dp.hw] = e;
    se += e;
  }
  let inv = 1.0 / se;
  for (var c = 0u; c < C; c++) { probs_out[base + c * dp.hw] *= inv; }
}

// Workgroup (chunk g, class c): dice_parts[(c * groups + g) * 3 + (0, 1, 2)] = (I, P, Y) partials.
@compute @workgroup_size(WG)
fn dice_partial(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let g = wid.x;
  let c = wid.y;
  let C = dp.classes;
  var si = 0.0;
  var sp = 0.0;
  var sy = 0.0;
  for (var p = g * WG + lid; p < dp.pixels; p += dp.groups * WG) {
    let y = label_id(labels[p], C);
    if (y == C) { continue; }
    let q = probs_in[(p / dp.hw) * C * dp.hw + c * dp.hw + p % dp.hw];
    let yc = select(0.0, 1.0, y == c);
    si += q * yc;
    sp += q;
    sy += yc;
  }
  let ti = wg_sum(lid, si);
  let tp = wg_sum(lid, sp);
  let ty = wg_sum(lid, sy);
  if (lid == 0u) {
    let o = (c * dp.groups + g) * 3u;
    dice_parts[o] = ti;
    dice_parts[o + 1u] = tp;
    dice_parts[o + 2u] = ty;
  }
}

// One workgroup: stats_out[2c] = 2 I + eps, stats_out[2c+1] = P + Y + eps; dice_result[0] = loss.
@compute @workgroup_size(WG)
fn dice_finish(@builtin(local_invocation_index) lid: u32) {
  var acc = 0.0;
  for (var c = dp.c0 + lid; c < dp.classes; c += WG) {
    var si = 0.0;
    var sp = 0.0;
    var sy = 0.0;
    for (var g = 0u; g < dp.groups; g++) {
      let o = (c * dp.groups + g) * 3u;
      si += dice_parts_in[o];
      sp += dice_parts_in[o + 1u];
      sy += dice_parts_in[o + 2u];
    }
    let num = 2.0 * si + dp.eps;
    let den = sp + sy + dp.eps;
    stats_out[2u * c] = num;
    stats_out[2u * c + 1u] = den;
    acc += num / den;
  }
  let total = wg_sum(lid, acc);
  if (lid == 0u) { dice_result[0] = 1.0 - total * dp.invk; }
}

// dice_gin = g * dL/dlogits; one thread per pixel. With a_c = dL/dp_c =
// -(2 y_c den_c - num_c) / (K den_c^2) for c >= c0 (0 below), dL/dx_c = p_c (a_c - sum_k p_k a_k).
@compute @workgroup_size(WG)
fn dice_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let p = flat(gid, groups);
  if (p >= dp.pixels) { return; }
  let C = dp.classes;
  let base = (p / dp.hw) * C * dp.hw + p % dp.hw;
  let y = label_id(labels[p], C);
  if (y == C) {
    for (var c = 0u; c < C; c++) { dice_gin[base + c * dp.hw] = 0.0; }
    return;
  }
  var dot = 0.0;
  for (var c = dp.c0; c < C; c++) {
    let num = stats_in[2u * c];
    let den = stats_in[2u * c + 1u];
    let a = -dp.invk * (select(0.0, 2.0 * den, c == y) - num) / (den * den);
    dot += probs_in[base + c * dp.hw] * a;
  }
  let g = gout4[0];
  for (var c = 0u; c < C; c++) {
    var a = 0.0;
    if (c >= dp.c0) {
      let num = stats_in[2u * c];
      let den = stats_in[2u * c + 1u];
      a = -dp.invk * (select(0.0, 2.0 * den, c == y) - num) / (den * den);
    }
    dice_gin[base + c * dp.hw] = g * probs_in[base + c * dp.hw] * (a - dot);
  }
}
@group(0) @binding(4) var<storage, read> gout4: array<f32>;
