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
