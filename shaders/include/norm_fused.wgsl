// The fused norm kernels (see norm.wgsl for the stats layout), included by norm.wgsl (workgroup
// sums: any workgroup size) and norm_subgroup.wgsl (subgroup sums: one subgroup per workgroup).
// The including shader declares `override WG`, includes norm_common.wgsl and defines
// group_sum(lid, f32) and group_sum2(lid, vec2f), each returning the workgroup's total to every
// invocation (called in uniform control flow).
//
// Fused kernels for groups small enough for one workgroup (training statistics only): one
// workgroup per channel c does the whole layer in one dispatch each way. Batch norm: the channel
// is one group; instance norm: each plane (n, c) is a group, taken in turn. Forward: two-pass
// statistics (pivot-shifted mean, then squared deviations), the stats array (norm.wgsl) for the
// backward, the running averages (RUNNING), and y = act((x - mean) * scale + bias [+ res]).
// Backward: d = dy * act'(y); sums of d and d * xhat; dx, dweight, dbias.
override ACT: u32 = 0u;       // 0 none, 1 ReLU, 2 leaky ReLU (p.slope >= 0, so y > 0 <=> pre-activation > 0)
override RESIDUAL: u32 = 0u;  // forward adds `res` before the activation
override RUNNING: u32 = 0u;   // forward updates the running mean and (unbiased) variance

// fused_forward: x(1), weight(2), bias(3) -> stats(4); res(5) -> y(6); running mean(7), var(8)
@group(0) @binding(5) var<storage, read> res_in: array<f32>;
@group(0) @binding(6) var<storage, read_write> y_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> rmean_f: array<f32>;
@group(0) @binding(8) var<storage, read_write> rvar_f: array<f32>;
// fused_backward: x(1), y(2), dy(3), stats(4) -> dx(5), dweight(6), dbias(7)
@group(0) @binding(2) var<storage, read> y_in: array<f32>;
@group(0) @binding(3) var<storage, read> dy_f: array<f32>;
@group(0) @binding(4) var<storage, read> stats_f: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx_f: array<f32>;
@group(0) @binding(6) var<storage, read_write> dweight_f: array<f32>;
@group(0) @binding(7) var<storage, read_write> dbias_f: array<f32>;
// fused_backward: gradients dweight and dbias already have (ADDEND bits 1 and 2), added in.
@group(0) @binding(8) var<storage, read> dweight_add: array<f32>;
@group(0) @binding(9) var<storage, read> dbias_add: array<f32>;
override ADDEND: u32 = 0u;

fn store_affine_grads(c: u32, total: vec2f) {
  var t = total;
  if ((ADDEND & 1u) != 0u) { t.y += dweight_add[c]; }
  if ((ADDEND & 2u) != 0u) { t.x += dbias_add[c]; }
  dbias_f[c] = t.x;
  dweight_f[c] = t.y;
}

fn act(v: f32) -> f32 {
  if (ACT == 1u) { return max(v, 0.0); }
  if (ACT == 2u) { return select(p.slope * v, v, v > 0.0); }
  return v;
}

fn act_grad(y: f32) -> f32 {
  if (ACT == 1u) { return select(0.0, 1.0, y > 0.0); }
  if (ACT == 2u) { return select(p.slope, 1.0, y > 0.0); }
  return 1.0;
}

// Gradient at the pre-activation: dy * act'(y) (y is read only when ACT != 0).
fn pre_grad(i: u32) -> f32 {
  if (ACT == 0u) { return dy_f[i]; }
  return dy_f[i] * act_grad(y_in[i]);
}

// The forward's group statistics: written out (stats array, running averages) by lane 0; returns
// (scale, shift) of y = (x - mean) * scale + shift.
fn finish_stats(lid: u32, c: u32, g: u32, mean: f32, variance: f32) -> vec2f {
  if (lid == 0u) {
    write_group(g, c, mean, variance);
    if (RUNNING == 1u) {
      let keep = 1.0 - p.momentum;
      rmean_f[c] = keep * rmean_f[c] + p.momentum * mean;
      rvar_f[c] = keep * rvar_f[c] + p.momentum * variance * p.unbias;
    }
  }
  var scale = 1.0 / sqrt(variance + p.eps);
  var shift = 0.0;
  if ((p.affine & 1u) != 0u) { scale *= weight[c]; }
  if ((p.affine & 2u) != 0u) { shift = bias[c]; }
  return vec2f(scale, shift);
}

@compute @workgroup_size(WG)
fn fused_forward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let inst = p.per_instance == 1u;
  let span = select(p.n, 1u, inst);          // planes per group
  let cnt = f32(span * p.hw);
  for (var r = 0u; r < select(1u, p.n, inst); r++) {
    let pivot = x[(r * p.c + c) * p.hw];
    var a = 0.0;
    for (var q = r; q < r + span; q++) {
      let base = (q * p.c + c) * p.hw;
      for (var k = lid; k < p.hw; k += WG) { a += x[base + k] - pivot; }
    }
    let mean = pivot + group_sum(lid, a) / cnt;
    var b = 0.0;
    for (var q = r; q < r + span; q++) {
      let base = (q * p.c + c) * p.hw;
      for (var k = lid; k < p.hw; k += WG) {
        let d = x[base + k] - mean;
        b += d * d;
      }
    }
    let variance = group_sum(lid, b) / cnt;
    let ss = finish_stats(lid, c, select(c, r * p.c + c, inst), mean, variance);
    let scale = ss.x;
    let shift = ss.y;
    for (var q = r; q < r + span; q++) {
      let base = (q * p.c + c) * p.hw;
      for (var k = lid; k < p.hw; k += WG) {
        let i = base + k;
        var v = (x[i] - mean) * scale + shift;
        if (RESIDUAL == 1u) { v += res_in[i]; }
        y_out[i] = act(v);
      }
    }
  }
}

@compute @workgroup_size(WG)
fn fused_backward(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let inst = p.per_instance == 1u;
  let span = select(p.n, 1u, inst);
  let cnt = f32(span * p.hw);
  let G = groups();
  var total = vec2f(0.0);
  for (var r = 0u; r < select(1u, p.n, inst); r++) {
    let g = select(c, r * p.c + c, inst);
    let mean = stats_f[g];
    let invstd = stats_f[2u * G + g];
    let scale = stats_f[3u * G + g];
    var acc = vec2f(0.0);
    for (var q = r; q < r + span; q++) {
      let base = (q * p.c + c) * p.hw;
      for (var k = lid; k < p.hw; k += WG) {
        let i = base + k;
        let d = pre_grad(i);
        acc += vec2f(d, d * (x[i] - mean) * invstd);
      }
    }
    let s = group_sum2(lid, acc);
    total += s;
    let c0 = s.x / cnt;
    let c1 = s.y / cnt;
    for (var q = r; q < r + span; q++) {
      let base = (q * p.c + c) * p.hw;
      for (var k = lid; k < p.hw; k += WG) {
        let i = base + k;
        let d = pre_grad(i);
        dx_f[i] = scale * (d - c0 - (x[i] - mean) * invstd * c1);
      }
    }
  }
  if (lid == 0u) { store_affine_grads(c, total); }
}

// The same two kernels on planes of a multiple of 4 elements, reading and writing vec4: on
// llvmpipe every storage access is a per-lane loop with a bounds check, and a vec4 costs less per
// element than four scalars. Each lane sums its 4 components before the group sum. Measured on
// lavapipe, batch-norm forward alone (2026-12-04): [1,64,16,16] 189 -> 168 us, [1,16,64,64]
// 307 -> 229 us, [1,64,64,64] 887 -> 631 us.
@group(0) @binding(1) var<storage, read> x4: array<vec4f>;
@group(0) @binding(5) var<storage, read> res_in4: array<vec4f>;
@group(0) @binding(6) var<storage, read_write> y_out4: array<vec4f>;
@group(0) @binding(2) var<storage, read> y_in4: array<vec4f>;
@group(0) @binding(3) var<storage, read> dy_f4: array<vec4f>;
@group(0) @binding(5) var<storage, read_write> dx_f4: array<vec4f>;

fn act4(v: vec4f) -> vec4f {
  if (ACT == 1u) { return max(v, vec4f(0.0)); }
  if (ACT == 2u) { return select(p.slope * v, v, v > vec4f(0.0)); }
  return v;
}
fn hsum(v: vec4f) -> f32 { return (v.x + v.y) + (v.z + v.w); }

fn pre_grad4(i: u32) -> vec4f {
  if (ACT == 0u) { return dy_f4[i]; }
  let y = y_in4[i];
  var d = vec4f(1.0);
  if (ACT == 1u) { d = select(vec4f(0.0), vec4f(1.0), y > vec4f(0.0)); }
  if (ACT == 2u) { d = select(vec4f(p.slope), vec4f(1.0), y > vec4f(0.0)); }
  return dy_f4[i] * d;
}

@compute @workgroup_size(WG)
fn fused_forward4(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let inst = p.per_instance == 1u;
  let span = select(p.n, 1u, inst);
  let cnt = f32(span * p.hw);
  let hw4 = p.hw / 4u;
  for (var r = 0u; r < select(1u, p.n, inst); r++) {
    let pivot = vec4f(x4[(r * p.c + c) * hw4].x);
    var a = vec4f(0.0);
    for (var q = r; q < r + span; q++) {
      let base = (q * p.c + c) * hw4;
      for (var k = lid; k < hw4; k += WG) { a += x4[base + k] - pivot; }
    }
    let mean = pivot.x + group_sum(lid, hsum(a)) / cnt;
    var b = vec4f(0.0);
    for (var q = r; q < r + span; q++) {
      let base = (q * p.c + c) * hw4;
      for (var k = lid; k < hw4; k += WG) {
        let d = x4[base + k] - vec4f(mean);
        b += d * d;
      }
    }
    let variance = group_sum(lid, hsum(b)) / cnt;
    let ss = finish_stats(lid, c, select(c, r * p.c + c, inst), mean, variance);
    let scale = ss.x;
    let shift = ss.y;
    for (var q = r; q < r + span; q++) {
      let base = (q * p.c + c) * hw4;
      for (var k = lid; k < hw4; k += WG) {
        let i = base + k;
        var v = (x4[i] - vec4f(mean)) * scale + shift;
        if (RESIDUAL == 1u) { v += res_in4[i]; }
        y_out4[i] = act4(v);
      }
    }
  }
}

@compute @workgroup_size(WG)
fn fused_backward4(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let inst = p.per_instance == 1u;
  let span = select(p.n, 1u, inst);
  let cnt = f32(span * p.hw);
  let hw4 = p.hw / 4u;
  let G = groups();
  var total = vec2f(0.0);
  for (var r = 0u; r < select(1u, p.n, inst); r++) {
    let g = select(c, r * p.c + c, inst);
    let mean = stats_f[g];
    let invstd = stats_f[2u * G + g];
    let scale = stats_f[3u * G + g];
    var a0 = vec4f(0.0);
    var a1 = vec4f(0.0);
    for (var q = r; q < r + span; q++) {
      let base = (q * p.c + c) * hw4;
      for (var k = lid; k < hw4; k += WG) {
        let i = base + k;
        let d = pre_grad4(i);
        a0 += d;
        a1 += d * (x4[i] - vec4f(mean)) * invstd;
      }
    }
    let s = group_sum2(lid, vec2f(hsum(a0), hsum(a1)));
    total += s;
    let c0 = s.x / cnt;
    let c1 = s.y / cnt;
    for (var q = r; q < r + span; q++) {
      let base = (q * p.c + c) * hw4;
      for (var k = lid; k < hw4; k += WG) {
        let i = base + k;
        dx_f4[i] = scale * (pre_grad4(i) - vec4f(c0) - (x4[i] - vec4f(mean)) * invstd * c1);
      }
    }
  }
  if (lid == 0u) { store_affine_grads(c, total); }
}
