// Elementwise kernels: unary maps and their gradients, broadcasting binary ops, fill, and
// in-place accumulation. One thread per element; the grid may be 2-D for large tensors.

override WG: u32 = 256u;
// Op id: UNARY_* or BINARY_* (generated from src/engine/primitives.ts, included below).
override OP: u32 = 0u;
// Binary ops on operands of the output's own shape skip the broadcast index arithmetic.
override SAME_SHAPE: bool = false;

struct UnaryParams { n: u32, alpha: f32, beta: f32 }
struct BinaryParams {
  n: u32,
  // Output dims 1..3 (dim 0 is implied by n).
  o1: u32, o2: u32, o3: u32,
  // Element strides of a and b per output dim; 0 where that operand is broadcast.
  a0: u32, a1: u32, a2: u32, a3: u32,
  b0: u32, b1: u32, b2: u32, b3: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> up: UnaryParams;
@group(0) @binding(0) var<uniform> bp: BinaryParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<storage, read> b_in: array<f32>;
@group(0) @binding(2) var<storage, read> gy: array<f32>;
@group(0) @binding(3) var<storage, read_write> out3: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;

fn flat(gid: vec3u, groups: vec3u) -> u32 {
  return gid.x + gid.y * groups.x * WG;
}

// #include "activation.wgsl"

fn stable_sigmoid(v: f32) -> f32 {
  if (v >= 0.0) { return 1.0 / (1.0 + exp(-v)); }
  let e = exp(v);
  return e / (1.0 + e);
}

// The op ids (UNARY_*, BINARY_*) are generated from the tables in src/engine/primitives.ts.
// #include "elementwise_ops.wgsl"

fn unary(v: f32) -> f32 {
  switch OP {
    case UNARY_RELU: { return max(v, 0.0); }
    case UNARY_LEAKY_RELU: { return select(up.alpha * v, v, v > 0.0); }
    case UNARY_TANH: { return stable_tanh(v); }
    case UNARY_SIGMOID: { return stable_sigmoid(v); }
    case UNARY_EXP: { return exp(v); }
    case UNARY_LOG: { return log(v); }
    case UNARY_ABS: { return abs(v); }
    case UNARY_SQRT: { return sqrt(v); }
    case UNARY_AFFINE: { return up.alpha * v + up.beta; }   // scalar mul/add
    case UNARY_SQUARE, default: { return v * v; }
  }
}

// d(unary)/d(input), given the saved value s: the input x for most ops, the output y for
// tanh, sigmoid, exp and sqrt (cheaper and more accurate).
fn unary_deriv(s: f32) -> f32 {
  switch OP {
    case UNARY_RELU: { return select(0.0, 1.0, s > 0.0); }
    case UNARY_LEAKY_RELU: { return select(up.alpha, 1.0, s > 0.0); }
    case UNARY_TANH: { return 1.0 - s * s; }
    case UNARY_SIGMOID: { return s * (1.0 - s); }
    case UNARY_EXP: { return s; }
    case UNARY_LOG: { return 1.0 / s; }
    case UNARY_ABS: { return sign(s); }
    case UNARY_SQRT: { return 0.5 / s; }
    case UNARY_AFFINE: { return up.alpha; }
    case UNARY_SQUARE, default: { return 2.0 * s; }
  }
}

@compute @workgroup_size(WG)
fn unary_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat(gid, groups);
  if (i >= up.n) { return; }
  y[i] = unary(x[i]);
}

// out3 = gy * f'(saved)
@compute @workgroup_size(WG)
fn unary_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat(gid, groups);
  if (i >= up.n) { return; }
  out3[i] = gy[i] * unary_deriv(x[i]);
}

// Output coordinates (i0, i1, i2, i3) of flat index i.
fn coords(i: u32) -> vec4u {
  let i3 = i % bp.o3;
  let r2 = i / bp.o3;
  let i2 = r2 % bp.o2;
  let r1 = r2 / bp.o2;
  return vec4u(r1 / bp.o1, r1 % bp.o1, i2, i3);
}

// y = scale * broadcast(x)
@compute @workgroup_size(WG)
fn expand(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat(gid, groups);
  if (i >= bp.n) { return; }
  y[i] = bp.scale * x[dot(coords(i), vec4u(bp.a0, bp.a1, bp.a2, bp.a3))];
}

@compute @workgroup_size(WG)
fn binary(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat(gid, groups);
  if (i >= bp.n) { return; }
  var av: f32;
  var bv: f32;
  if (SAME_SHAPE) {
    av = x[i];
    bv = b_in[i];
  } else {
    let c = coords(i);
    av = x[dot(c, vec4u(bp.a0, bp.a1, bp.a2, bp.a3))];
    bv = b_in[dot(c, vec4u(bp.b0, bp.b1, bp.b2, bp.b3))];
  }
  var r: f32;
  switch OP {
    case BINARY_ADD: { r = av + bv; }
    case BINARY_SUB: { r = av - bv; }
    case BINARY_MUL: { r = av * bv; }
    case BINARY_DIV, default: { r = av / bv; }
  }
  out3[i] = r;
}

// acc = alpha * acc + beta * x   (in place; accumulation of gradients, scaling)
@compute @workgroup_size(WG)
fn axpby(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat(gid, groups);
  if (i >= up.n) { return; }
  acc[i] = up.alpha * acc[i] + up.beta * x_second[i];
}
@group(0) @binding(2) var<storage, read> x_second: array<f32>;

// acc = alpha
@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat(gid, groups);
  if (i >= up.n) { return; }
  acc[i] = up.alpha;
}
