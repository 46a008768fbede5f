// Workgroup sums shared by the loss and norm kernels (the including shader declares `override WG`,
// a multiple of 8). Every invocation gets the total; call in uniform control flow.
// Two levels (8 partial sums of WG / 8 values, then their total) keep the number of barriers
// small, which matters on CPU implementations (lavapipe) where each barrier is a coroutine switch;
// the trailing barrier makes back-to-back calls safe. Two sums at once cost the barriers of one.

var<workgroup> wg_red: array<vec2f, WG>;

fn wg_sum2(lid: u32, v: vec2f) -> vec2f {
  wg_red[lid] = v;
  workgroupBarrier();
  if (lid < 8u) {
    var s = vec2f(0.0);
    for (var k = lid; k < WG; k += 8u) { s += wg_red[k]; }
    wg_red[lid] = s;
  }
  workgroupBarrier();
  var total = vec2f(0.0);
  for (var k = 0u; k < 8u; k++) { total += wg_red[k]; }
  workgroupBarrier();
  return total;
}

fn wg_sum(lid: u32, v: f32) -> f32 {
  return wg_sum2(lid, vec2f(v, 0.0)).x;
}
