// Batch and instance normalization over NCHW tensors, forward and backward.
//
// Statistics are computed per "group": a channel c (batch norm: N*H*W elements) or a plane (n, c)
// (instance norm: H*W elements). Every plane (n, c) is cut into `splits` chunks of at most `chunk`
// elements and each chunk is reduced by one workgroup (per-invocation sums, then a two-level sum
// in workgroup memory), so large planes spread over many workgroups. Chunks are reduced two-pass
// (chunk mean, then the sum of squared deviations from it) and the chunk results (count, mean,
// M2) are merged with Chan's parallel formula by one thread per channel: numerically stable for
// any mean/std ratio. The per-element kernels (normalize, grad_apply) give each workgroup a run
// of one plane, so the group's statistics are loaded once per invocation.
//
// The per-group results live in one `stats` array of 5 * G floats:
//   [0, G) mean, [G, 2G) biased variance, [2G, 3G) 1/sqrt(var + eps),
//   [3G, 4G) scale = weight * invstd, [4G, 5G) bias (0 without one)
// so that the forward is y = (x - mean) * scale + bias and the backward needs no weight. (Folding
// the mean into the shift, x * scale - mean * scale + bias, would lose precision when |mean| >> std.)

override WG: u32 = 256u;

// #include "norm_common.wgsl"

// (norm_common.wgsl: x at 1; weight, bias, stats_out at 2, 3, 4)
// stats_partial: x -> part
@group(0) @binding(2) var<storage, read_write> part_out: array<f32>;
// stats_finalize / eval_stats: (part | running mean), weight, bias -> stats, (running var)
@group(0) @binding(1) var<storage, read> src1: array<f32>;
@group(0) @binding(5) var<storage, read> running_var_in: array<f32>;
// running_update: stats -> running mean, running var (in place)
@group(0) @binding(1) var<storage, read> stats_a: array<f32>;
@group(0) @binding(2) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> running_var: array<f32>;
// normalize: x, stats -> y
@group(0) @binding(2) var<storage, read> stats_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
// grad_partial: x, dy, stats -> part
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read> stats_c: array<f32>;
@group(0) @binding(4) var<storage, read_write> gpart_out: array<f32>;
// grad_finalize: part -> gsum, dweight, dbias
@group(0) @binding(2) var<storage, read_write> gsum_out: array<f32>;
@group(0) @binding(3) var<storage, read_write> dweight: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbias: array<f32>;
// grad_apply: x, dy, stats, gsum -> dx
@group(0) @binding(4) var<storage, read> gsum: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

// #include "wg_sum.wgsl"

// The fused kernels' sums (include/norm_fused.wgsl) in workgroup memory.
fn group_sum(lid: u32, v: f32) -> f32 { return wg_sum(lid, v); }
fn group_sum2(lid: u32, v: vec2f) -> vec2f { return wg_sum2(lid, v); }

fn chunk_len(s: u32) -> u32 {
  return min(p.chunk, p.hw - s * p.chunk);
}

fn flat(gid: vec3u, n: vec3u) -> u32 {
  return gid.x + gid.y * n.x * WG;
}

// One workgroup per (plane, chunk): part[2w] = chunk mean, part[2w + 1] = sum of squared deviations.
@compute @workgroup_size(WG)
fn stats_partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
                 @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * ng.x;
  let valid = w < p.n * p.c * p.splits;
  var base = 0u;
  var cnt = 0u;
  if (valid) {
    let plane = w / p.splits;
    let s = w % p.splits;
    base = plane * p.hw + s * p.chunk;
    cnt = chunk_len(s);
  }
  // Pass 1 sums x - pivot (the chunk's first element): small terms, so the chunk mean stays
  // accurate even when |mean| >> std.
  var pivot = 0.0;
  if (valid) { pivot = x[base]; }
  var a = 0.0;
  for (var j = lid; j < cnt; j += WG) { a += x[base + j] - pivot; }
  let mean = pivot + wg_sum(lid, a) / f32(max(cnt, 1u));
  var b = 0.0;
  for (var j = lid; j < cnt; j += WG) {
    let d = x[base + j] - mean;
    b += d * d;
  }
  let m2 = wg_sum(lid, b);
  if (lid == 0u && valid) {
    part_out[2u * w] = mean;
    part_out[2u * w + 1u] = m2;
  }
}

// One thread per channel: merges the chunk results of its group(s) (Chan et al.).
@compute @workgroup_size(WG)
fn stats_finalize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let c = flat(gid, ng);
  if (c >= p.c) { return; }
  var cnt = 0.0;
  var mean = 0.0;
  var m2 = 0.0;
  for (var n = 0u; n < p.n; n++) {
    if (p.per_instance == 1u) {
      cnt = 0.0;
      mean = 0.0;
      m2 = 0.0;
    }
    for (var s = 0u; s < p.splits; s++) {
      let w = (n * p.c + c) * p.splits + s;
      let nb = f32(chunk_len(s));
      let mb = src1[2u * w];
      let tot = cnt + nb;
      let d = mb - mean;
      mean += d * (nb / tot);
      m2 += src1[2u * w + 1u] + d * d * (cnt * nb / tot);
      cnt = tot;
    }
    if (p.per_instance == 1u) { write_group(n * p.c + c, c, mean, m2 / cnt); }
  }
  if (p.per_instance == 0u) { write_group(c, c, mean, m2 / cnt); }
}

// Eval-mode batch norm: statistics from the running mean (binding 1) and variance (binding 5).
@compute @workgroup_size(WG)
fn eval_stats(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let c = flat(gid, ng);
  if (c >= p.c) { return; }
  write_group(c, c, src1[c], running_var_in[c]);
}

// running = (1 - momentum) * running + momentum * batch (unbiased variance), one thread per channel.
@compute @workgroup_size(WG)
fn running_update(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let c = flat(gid, ng);
  if (c >= p.c) { return; }
  let keep = 1.0 - p.momentum;
  running_mean[c] = keep * running_mean[c] + p.momentum * stats_a[c];
  running_var[c] = keep * running_var[c] + p.momentum * stats_a[p.c + c] * p.unbias;
}

// Per-element kernels run on a (blocks of a plane, plane) grid: the plane, hence the statistics
// group, is uniform over a workgroup and no per-element division is needed. Each invocation
// handles ELEMS elements WG apart (coalesced), loading its group's statistics once. Planes beyond
// the 65535 limit of one grid dimension continue in z.
const ELEMS: u32 = 8u;

fn plane_of(wid: vec3u, ng: vec3u) -> u32 {
  return wid.y + wid.z * ng.y;
}

// y = (x - mean[g]) * scale[g] + bias[g]
@compute @workgroup_size(WG)
fn normalize(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
             @builtin(local_invocation_index) lid: u32) {
  let plane = plane_of(wid, ng);
  if (plane >= p.n * p.c) { return; }
  let G = groups();
  let g = plane % G;
  let mean = stats_b[g];
  let scale = stats_b[3u * G + g];
  let shift = stats_b[4u * G + g];
  let base = plane * p.hw;
  for (var j = 0u; j < ELEMS; j++) {
    let k = (wid.x * ELEMS + j) * WG + lid;
    if (k < p.hw) { y[base + k] = (x[base + k] - mean) * scale + shift; }
  }
}

// One workgroup per (plane, chunk): part[2w] = sum dy, part[2w + 1] = sum dy * xhat.
@compute @workgroup_size(WG)
fn grad_partial(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
                @builtin(local_invocation_index) lid: u32) {
  let w = wid.x + wid.y * ng.x;
  let valid = w < p.n * p.c * p.splits;
  let G = groups();
  var base = 0u;
  var cnt = 0u;
  var mean = 0.0;
  var invstd = 0.0;
  if (valid) {
    let plane = w / p.splits;
    let s = w % p.splits;
    base = plane * p.hw + s * p.chunk;
    cnt = chunk_len(s);
    let g = plane % G;
    mean = stats_c[g];
    invstd = stats_c[2u * G + g];
  }
  var acc = vec2f(0.0);
  for (var j = lid; j < cnt; j += WG) {
    let d = dy[base + j];
    acc += vec2f(d, d * (x[base + j] - mean) * invstd);
  }
  let r = wg_sum2(lid, acc);
  if (lid == 0u && valid) {
    gpart_out[2u * w] = r.x;
    gpart_out[2u * w + 1u] = r.y;
  }
}

// One thread per channel: per-group sums (gsum[g] = sum dy, gsum[G + g] = sum dy * xhat) and the
// parameter gradients dbias[c] = sum dy, dweight[c] = sum dy * xhat over the whole channel.
@compute @workgroup_size(WG)
fn grad_finalize(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let c = flat(gid, ng);
  if (c >= p.c) { return; }
  let G = groups();
  var total = vec2f(0.0);
  for (var n = 0u; n < p.n; n++) {
    var acc = vec2f(0.0);
    for (var s = 0u; s < p.splits; s++) {
      let w = (n * p.c + c) * p.splits + s;
      acc += vec2f(src1[2u * w], src1[2u * w + 1u]);
    }
    if (p.per_instance == 1u) {
      let g = n * p.c + c;
      gsum_out[g] = acc.x;
      gsum_out[G + g] = acc.y;
    }
    total += acc;
  }
  if (p.per_instance == 0u) {
    gsum_out[c] = total.x;
    gsum_out[G + c] = total.y;
  }
  dbias[c] = total.x;
  dweight[c] = total.y;
}

// dx. Training: scale * (dy - mean(dy) - xhat * mean(dy * xhat)) over the group; eval: dy * scale.
@compute @workgroup_size(WG)
fn grad_apply(@builtin(workgroup_id) wid: vec3u, @builtin(num_workgroups) ng: vec3u,
              @builtin(local_invocation_index) lid: u32) {
  let plane = plane_of(wid, ng);
  if (plane >= p.n * p.c) { return; }
  let G = groups();
  let g = plane % G;
  let mean = stats_c[g];
  let invstd = stats_c[2u * G + g];
  let scale = stats_c[3u * G + g];
  let training = p.training == 1u;
  var c0 = 0.0;
  var c1 = 0.0;
  if (training) {
    let m = f32(select(p.n * p.hw, p.hw, p.per_instance == 1u));
    c0 = gsum[g] / m;
    c1 = gsum[G + g] / m;
  }
  let base = plane * p.hw;
  for (var j = 0u; j < ELEMS; j++) {
    let k = (wid.x * ELEMS + j) * WG + lid;
    if (k >= p.hw) { break; }
    let i = base + k;
    if (training) {
      let xhat = (x[i] - mean) * invstd;
      dx[i] = scale * (dy[i] - c0 - xhat * c1);
    } else {
      dx[i] = dy[i] * scale;
    }
  }
}

// #include "norm_fused.wgsl"
