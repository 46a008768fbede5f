// Coordinate-wise trimmed mean over the rows of x [m, n]: out[j] is the mean of column j's values
// after dropping its `trim` smallest and `trim` largest (Yin et al. 2018, "Byzantine-robust
// distributed learning: towards optimal statistical rates"). trim = floor((m - 1) / 2) is the
// coordinate-wise median. One thread per column; the column is sorted in registers, so m is at
// most MAX_ROWS (the op checks). Rows are votes (one per node), so m is small.

override WG: u32 = 256u;
const MAX_ROWS: u32 = 64u;

struct Params {
  m: u32,
  n: u32,
  trim: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn trimmed_mean(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let j = gid.x + gid.y * ng.x * WG;
  if (j >= p.n) { return; }
  var v: array<f32, MAX_ROWS>;
  // Insertion sort while loading: m is small, and it needs no second pass.
  for (var i = 0u; i < p.m; i++) {
    let a = x[i * p.n + j];
    var k = i;
    while (k > 0u && v[k - 1u] > a) {
      v[k] = v[k - 1u];
      k--;
    }
    v[k] = a;
  }
  var s = 0.0;
  for (var i = p.trim; i < p.m - p.trim; i++) { s += v[i]; }
  out[j] = s / f32(p.m - 2u * p.trim);
}

// Trust scores for 'median-trust' (robust.ts voteAlignment): workgroup i < m reduces row i of x
// against the reference r, writing out[2i] = x_i . r and out[2i + 1] = x_i . x_i; workgroup m
// writes out[2m] = r . r. One workgroup per row: m is small and n long.
// The reference r (row_dots) or the weights w (weighted_rows).
@group(0) @binding(3) var<storage, read> aux: array<f32>;
var<workgroup> partial_dot: array<f32, WG>;
var<workgroup> partial_sq: array<f32, WG>;

@compute @workgroup_size(WG)
fn row_dots(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let i = wid.x;
  var d = 0.0;
  var q = 0.0;
  for (var j = lid.x; j < p.n; j += WG) {
    let b = aux[j];
    let a = select(b, x[i * p.n + j], i < p.m);
    d += a * b;
    q += a * a;
  }
  partial_dot[lid.x] = d;
  partial_sq[lid.x] = q;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      partial_dot[lid.x] += partial_dot[lid.x + s];
      partial_sq[lid.x] += partial_sq[lid.x + s];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    if (i < p.m) {
      out[2u * i] = partial_dot[0];
      out[2u * i + 1u] = partial_sq[0];
    } else {
      out[2u * i] = partial_sq[0];
    }
  }
}

// out[j] = sum_i w[i] x[i, j] (w = aux): the trust-weighted combination of the votes.

@compute @workgroup_size(WG)
fn weighted_rows(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) ng: vec3u) {
  let j = gid.x + gid.y * ng.x * WG;
  if (j >= p.n) { return; }
  var s = 0.0;
  for (var i = 0u; i < p.m; i++) { s += aux[i] * x[i * p.n + j]; }
  out[j] = s;
}
