// Shared by norm.wgsl and norm_subgroup.wgsl (the including shader declares `override WG`): the
// parameters, the bindings of the statistics writer, and the writer of the stats array.

struct Params {
  n: u32,             // batch
  c: u32,             // channels
  hw: u32,            // elements per plane (H * W)
  splits: u32,        // chunks per plane
  chunk: u32,         // elements per chunk (the last one of a plane may be shorter)
  per_instance: u32,  // 1: groups are planes (instance norm); 0: groups are channels (batch norm)
  affine: u32,        // bit 0: has weight (else 1), bit 1: has bias (else 0); absent ones are dummies
  training: u32,      // backward: 1 = through the batch statistics; 0 = statistics are constants
  eps: f32,
  momentum: f32,
  unbias: f32,        // M / (M - 1), turns the biased variance into the unbiased one
  slope: f32,         // fused kernels, ACT 2: negative slope of the leaky ReLU (>= 0)
}

@group(0) @binding(0) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> stats_out: array<f32>;

fn groups() -> u32 {
  return select(p.c, p.n * p.c, p.per_instance == 1u);
}

fn write_group(g: u32, c: u32, mean: f32, variance: f32) {
  let G = groups();
  let invstd = 1.0 / sqrt(variance + p.eps);
  var wt = 1.0;
  var bs = 0.0;
  if ((p.affine & 1u) != 0u) { wt = weight[c]; }
  if ((p.affine & 2u) != 0u) { bs = bias[c]; }
  let scale = wt * invstd;
  stats_out[g] = mean;
  stats_out[G + g] = variance;
  stats_out[2u * G + g] = invstd;
  stats_out[3u * G + g] = scale;
  stats_out[4u * G + g] = bs;
}
