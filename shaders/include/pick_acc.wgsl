// Shared by conv2d.wgsl and matmul.wgsl, which declare `var<private> acc: array<vec4f, 16>`
// (register-blocked accumulators) and `override TM` (rows in use: 4, 8 or 16).

// acc[r] for a runtime r, by selects (a dynamic index would move acc out of registers).
fn pick(r: u32) -> vec4f {
  var v = acc[0];
  v = select(v, acc[1], r == 1u);
  v = select(v, acc[2], r == 2u);
  v = select(v, acc[3], r == 3u);
  if (TM > 4u) {
    v = select(v, acc[4], r == 4u);
    v = select(v, acc[5], r == 5u);
    v = select(v, acc[6], r == 6u);
    v = select(v, acc[7], r == 7u);
  }
  if (TM > 8u) {
    v = select(v, acc[8], r == 8u);
    v = select(v, acc[9], r == 9u);
    v = select(v, acc[10], r == 10u);
    v = select(v, acc[11], r == 11u);
    v = select(v, acc[12], r == 12u);
    v = select(v, acc[13], r == 13u);
    v = select(v, acc[14], r == 14u);
    v = select(v, acc[15], r == 15u);
  }
  return v;
}
