// 2-D convolution as implicit GEMM: one kernel family for forward, data gradient (also the
// forward of a transposed convolution) and weight gradient, selected by the MODE override.
//
//   MODE 0, forward:      out[b,co,oh,ow] = sum_{ci,kh,kw} w[co,ci,kh,kw] * x[b,ci,oh*s-p+kh*d, ow*s-p+kw*d]
//                         rows = co, columns = output pixels, K = (ci, kh, kw)
//   MODE 1, data grad:    dx[b,ci,ih,iw] = sum_{co,kh,kw} w[co,ci,kh,kw] * dy[b,co,oh,ow]
//                         where ih = oh*s-p+kh*d (same for w); rows = ci, columns = input pixels,
//                         K = (co, kh, kw) restricted to the taps that hit the pixel's stride phase
//   MODE 2, weight grad:  dw[co,ci,kh,kw] = sum_{b,oh,ow} dy[b,co,oh,ow] * x[b,ci,oh*s-p+kh*d, ...]
//                         rows = co, columns = (ci, kh, group of 4 kw taps), K = (b, oh, ow)
//
// Why it is shaped like this (llvmpipe/lavapipe: an invocation is one lane of an 8-wide SIMD
// vector). Measured on Mesa 25.0: every storage-buffer load is a per-lane scalar loop with a bounds
// check (~15 instructions per lane and component, a vec4 costs about half per component), every
// register written in a loop is blended with the loop mask, while subgroupShuffle is a single
// vpermd. A workgroup barrier turns the shader into coroutines that keep all state in memory. So:
// * No workgroup memory, no barriers; operands are shared between the 8 lanes of a subgroup
//   through shuffles instead.
// * Each invocation computes TM rows x 4 columns (register blocking: TM vec4 accumulators).
// * Modes 0, 1: for each (c, kh) the 8 lanes load the TM*KW weights of their row tile and shuffle
//   each block of 4 to all lanes. The weights are either packed first (entry `pack`) as
//   [c][kh][row][KW], so that the tile is a few aligned vec4, or (DIRECTW) read as scalars from the
//   canonical [co][ci][kh][kw] layout at per-lane offsets computed once: more load instructions
//   (a large convolution runs 20-40% slower), but no packing launch, which is what small
//   convolutions pay for most (conv.ts chooses).
// * Modes 0, 1: the 8 lanes of a subgroup own 32 consecutive pixels of one row (a "strip"). When
//   the source rows are 16-byte aligned (COOP) they load the strip's source span as aligned vec4
//   (one per lane, rarely a second) and build each lane's window by shuffles; where rows are
//   exactly 4 x quads long at stride 1 (NBR) each lane loads its own quad as a vec4 and shuffles
//   the rest of its window from its neighbours; otherwise each lane loads its own window of
//   WL = 3*s + (KW-1)*d + 1 elements. Either way a window of WL values
//   serves 4 pixels x KW taps, at compile-time positions (KW, SW, DW, ... are overrides), so it
//   lives in registers.
// * Mode 2: the dy rows are the shared operand (vec4 loads when aligned, shuffled to all lanes);
//   each lane reads its own x window.
// The data gradient's stride phases along the height are on the grid's z (uniform per workgroup),
// so within a workgroup a tap either always or never contributes: no divisibility tests per
// element. A phase along the width fixes the window's layout (RW, OFFMIN, WL at compile time):
// two width phases share a launch (NWP 2) by holding one copy of the loop each, picked by z.
//
// Requires subgroups whose size is a multiple of 8, with local invocations 8k..8k+7 in one
// subgroup at subgroup ids that agree mod 8 (true for 1-D workgroups on common implementations).
//
// Bindings: 0 params, 1 src (x for modes 0 and 2, dy for mode 1), 2 dy (mode 2) or the weights
// (modes 0, 1), 3 bias (HAS_BIAS; any read-only buffer otherwise), 4 output, 5 packed weights as
// vec4 (modes 0, 1 without DIRECTW; any buffer with it) or dy as vec4 (mode 2), 6 src as vec4
// (COOP, NBR, XV; any buffer otherwise), 7 addend (HAS_ADDEND; any read-only buffer otherwise),
// 8 the tile counter (DYN; bound always).

enable subgroups;
// DYN: the loop over tiles is uniform per group of 8 lanes (one subgroup), not per workgroup.
diagnostic(off, subgroup_uniformity);

override MODE: u32 = 0u;
// Rows per invocation: 4, 8 or 16.
override TM: u32 = 16u;
override WG: u32 = 64u;
// Geometry along the width (compile-time so that window indices are constants).
override KW: u32 = 3u;
override SW: u32 = 1u;
override DW: u32 = 1u;
override PW: i32 = 0;
// MODE 1: stride phase along the width (iw = RW + SW * column) and the smallest tap offset.
override RW: u32 = 0u;
override OFFMIN: i32 = 0;
// Window length (computed on the host; at most WMAX).
override WL: u32 = 6u;
override HAS_BIAS: bool = false;
// Channels per iteration of the K loop (modes 0, 1): 1 or 2. Every accumulator is written back
// (a masked store) once per iteration, so 2 saves some work, at twice the compile time.
override CU: u32 = 1u;
// Modes 0, 1: cooperative aligned loads of the source rows (source width % 4 == 0).
override COOP: bool = false;
// COOP: window stride between neighbouring lanes in vec4 blocks (SW in mode 0, 1 in mode 1), the
// strip's source start mod 4, aligned blocks per strip and vec4 loads per lane (<= 4).
override LS: u32 = 1u;
override S0: u32 = 0u;
override NBLK: u32 = 10u;
override NLD: u32 = 2u;
// MODE 1: width stride phases in this launch, 1 or 2 (both phases of a stride-2 data gradient
// when their rows have the same number of quads; the grid's z is then height phase + NHP *
// width phase). The second phase's constants, as RW .. NLD for the first:
override NWP: u32 = 1u;
override RW1: u32 = 1u;
override OFFMIN1: i32 = 0;
override WL1: u32 = 6u;
override S01: u32 = 0u;
override NBLK1: u32 = 10u;
override NLD1: u32 = 2u;
// Mode 2: dy rows are 16-byte aligned (OW % 4 == 0): read 4 columns as one vec4.
override DYV: bool = false;
// Mode 2, one tap group (KW <= 4), stride and dilation 1 along the width, x rows 16-byte aligned:
// the x windows come from aligned vec4 blocks carried along the row (XV), one new block per quad
// instead of WL scalar loads. The window of quad q starts XOFF elements into block q + XBB and
// spans XNB blocks (<= 3).
override XV: bool = false;
override XOFF: u32 = 0u;
override XBB: i32 = 0;
override XNB: u32 = 3u;
// XV with REFLECT where rows are "same" width (OW = W, K = 2 PW + 1): the mirrored columns of a
// row's first and last quads come from its first and last blocks, both carried in b[-XBB].
override XMIRROR: bool = false;
// Modes 0, 1: read the weights from their canonical layout (binding 2) instead of packed ones.
override DIRECTW: bool = false;
// Reflection padding (PyTorch ReflectionPad2d then an unpadded convolution), never with COOP.
// Modes 0, 2 (and `naive` 0, 2): source rows and columns outside the image read their mirror
// images. Mode 1 (stride 1, dilation 1, K = 2P + 1 only; the host folds other geometry): the zero
// padding's data gradient plus the gradient of every padded position, added onto the pixel it
// mirrors: border rows sum the windows of their mirrored dy rows, and the first and last quads of
// a row add mirrored window elements to their taps (RL: pixels in the last quad of a row).
override REFLECT: bool = false;
override RL: u32 = 4u;
// Modes 0, 1, stride and dilation 1 along the width, source rows of exactly 4 * qlen elements,
// without COOP: neighbour windows (see nbr_window); HL columns of the window precede the lane's
// own quad.
override NBR: bool = false;
override HL: u32 = 1u;
// Modes 1, 2: add `addend` (a gradient accumulated so far) to every output.
override HAS_ADDEND: bool = false;
// Mode 0: activation epilogue on act(conv + bias): 0 none, 1 tanh, 2 leaky ReLU (slope ACT_SLOPE).
override ACT: u32 = 0u;
override ACT_SLOPE: f32 = 0.0;
// Dynamic tile scheduling (CPU adapters; WG 8, one lane group per workgroup): the grid launches a
// few workgroups, one per worker thread, and each takes tiles (8 columns x TM rows x one z) from
// a shared counter until none are left. llvmpipe hands a dispatch's workgroups to its threads in
// fixed shares (workgroups / threads each), so with the few workgroups of a small convolution a
// thread that starts late, or a share that costs more, leaves the other threads idle.
override DYN: bool = false;

struct Params {
  nb: u32,      // batch
  mrows: u32,   // rows (M)
  ncols: u32,   // invocation columns (quads of pixels, or (ci, kh, tap group) in mode 2)
  kloop: u32,   // channels summed over (ci in mode 0, co in mode 1)
  kh: u32,      // KH
  ylen: u32,    // pixel rows per image handled by one dispatch (OH, or the phase's rows)
  qlen: u32,    // quads of pixels per row (a multiple of 8 with COOP)
  src_c: u32,   // source tensor [nb, src_c, src_h, src_w]
  src_h: u32,
  src_w: u32,
  dst_h: u32,   // destination image size (modes 0, 1)
  dst_w: u32,
  sh: u32,
  ph: i32,
  dh: u32,
  nhp: u32,     // MODE 1: height stride phases (the grid's z, per width phase)
  w_row: u32,   // `pack`, DIRECTW: weight stride of a row
  w_loop: u32,  // `pack`, DIRECTW: weight stride of the summed channel
  oh: u32,      // MODE 2: dy size
  ow: u32,
  rows_per_split: u32,  // MODE 2: (b, oh) rows per split (z of the grid)
  nkw: u32,             // KW as a runtime value
  tm: u32,              // TM as a runtime value (a loop bound the compiler must not unroll)
  row_pad: u32,         // rows of the packed weights (a multiple of TM)
  total: u32,           // `pack`: elements to write
  tiles_x: u32,         // DYN: tiles along x (groups of 8 columns), y (row tiles) and z
  tiles_y: u32,
  tiles_z: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> dys: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
@group(0) @binding(5) var<storage, read> op4: array<vec4f>;
@group(0) @binding(6) var<storage, read> src4: array<vec4f>;
@group(0) @binding(7) var<storage, read> addend: array<f32>;
// DYN: the tile counter (zero between dispatches: the last grab of a dispatch resets it).
@group(0) @binding(8) var<storage, read_write> sched: array<atomic<u32>>;

const WMAX = 20u;

var<private> acc: array<vec4f, 16>;
var<private> win: array<f32, WMAX>;
// COOP: this lane's aligned source blocks; weights (modes 0, 1) or dy (mode 2) blocks.
var<private> blk: array<vec4f, 4>;
var<private> opb: array<vec4f, 4>;
// This lane's position in its group of 8 and the subgroup id of the group's first lane.
var<private> lane: u32;
var<private> lane0: u32;
// NBR, or MODE 1 with REFLECT: this lane's quad is the first, last or second-to-last of its row.
var<private> quad_first: bool;
var<private> quad_last: bool;
var<private> quad_last2: bool;

// One stride phase's window geometry (mode 1; modes 0 and 2 take the first). Passed as a value
// built from override constants, so every use folds to a constant once inlined: each phase's
// window stays in registers.
struct Phase {
  rw: u32,      // phase along the width (iw = rw + SW * column)
  offmin: i32,  // the smallest tap offset
  wl: u32,      // window length
  s0: u32,      // COOP: S0, NBLK, NLD of this phase
  nblk: u32,
  nld: u32,
}
fn phase0() -> Phase { return Phase(RW, OFFMIN, WL, S0, NBLK, NLD); }
fn phase1() -> Phase { return Phase(RW1, OFFMIN1, WL1, S01, NBLK1, NLD1); }

// The value `v` of lane (group start + l).
fn from_lane(v: f32, l: u32) -> f32 {
  return subgroupShuffle(v, lane0 + l);
}

// Element i of the group's shared operand: in blocks (opb of lane (i/4)%8, load i/32, component
// i%4), or with DIRECTW in scalar slots (lane i%8, slot i/8, see load_w_blocks).
fn shared_op(i: u32) -> f32 {
  if (DIRECTW && MODE != 2u) {
    let s = i / 8u;
    return from_lane(opb[s / 4u][s % 4u], i % 8u);
  }
  let b = i / 4u;
  return from_lane(opb[b / 8u][i % 4u], b % 8u);
}

// acc[r] += a_r * b for every row r < TM, a_r = shared operand element r*RS + t.
fn fma_rows(b: vec4f, t: u32, rs: u32) {
  acc[0] = fma(vec4f(shared_op(t)), b, acc[0]);
  acc[1] = fma(vec4f(shared_op(rs + t)), b, acc[1]);
  acc[2] = fma(vec4f(shared_op(2u * rs + t)), b, acc[2]);
  acc[3] = fma(vec4f(shared_op(3u * rs + t)), b, acc[3]);
  if (TM > 4u) {
    acc[4] = fma(vec4f(shared_op(4u * rs + t)), b, acc[4]);
    acc[5] = fma(vec4f(shared_op(5u * rs + t)), b, acc[5]);
    acc[6] = fma(vec4f(shared_op(6u * rs + t)), b, acc[6]);
    acc[7] = fma(vec4f(shared_op(7u * rs + t)), b, acc[7]);
  }
  if (TM > 8u) {
    acc[8] = fma(vec4f(shared_op(8u * rs + t)), b, acc[8]);
    acc[9] = fma(vec4f(shared_op(9u * rs + t)), b, acc[9]);
    acc[10] = fma(vec4f(shared_op(10u * rs + t)), b, acc[10]);
    acc[11] = fma(vec4f(shared_op(11u * rs + t)), b, acc[11]);
    acc[12] = fma(vec4f(shared_op(12u * rs + t)), b, acc[12]);
    acc[13] = fma(vec4f(shared_op(13u * rs + t)), b, acc[13]);
    acc[14] = fma(vec4f(shared_op(14u * rs + t)), b, acc[14]);
    acc[15] = fma(vec4f(shared_op(15u * rs + t)), b, acc[15]);
  }
}

// Loads blocks lane, lane+8, ... (< nblk) of the vec4 array op4 from `base` into opb (zero if !ok).
fn load_op_blocks(base: u32, nblk: u32, ok: bool) {
  let nld = (nblk + 7u) / 8u;
  if (nld > 0u) { opb[0] = select(vec4f(0.0), op4[base + lane], ok && lane < nblk); }
  if (nld > 1u) { opb[1] = vec4f(0.0); if (lane + 8u < nblk) { opb[1] = select(vec4f(0.0), op4[base + lane + 8u], ok); } }
  if (nld > 2u) { opb[2] = vec4f(0.0); if (lane + 16u < nblk) { opb[2] = select(vec4f(0.0), op4[base + lane + 16u], ok); } }
  if (nld > 3u) { opb[3] = vec4f(0.0); if (lane + 24u < nblk) { opb[3] = select(vec4f(0.0), op4[base + lane + 24u], ok); } }
}

// DIRECTW: element i of the row tile's TM*KW weights (row r = i / KW, tap i % KW) is
// w[(row0 + r) * w_row + c * w_loop + kh * KW + tap]. Lane i % 8 loads it into slot s = i / 8
// (component s % 4 of opb[s / 4]): ceil(TM*KW / 8) scalar loads per lane, none of them wasted
// (with 4 consecutive elements per lane, TM 16 x KW 3 took 8 loads for 6 useful ones). The
// lane's offsets and validity do not change along the K loop.
fn wslots() -> u32 { return (TM * KW + 7u) / 8u; }
var<private> woff: array<vec4u, 4>;
var<private> wok: array<vec4<bool>, 4>;

fn woff1(i: u32, row0: u32) -> vec2u {
  let r = i / KW;
  let ok = i < TM * KW && row0 + r < p.mrows;
  return vec2u(select(0u, (row0 + r) * p.w_row + i % KW, ok), select(0u, 1u, ok));
}

fn woff4(l: u32, row0: u32) {
  let i = 32u * l + lane;
  let a = woff1(i, row0);
  let b = woff1(i + 8u, row0);
  let c = woff1(i + 16u, row0);
  let d = woff1(i + 24u, row0);
  woff[l] = vec4u(a.x, b.x, c.x, d.x);
  wok[l] = vec4<bool>(a.y == 1u, b.y == 1u, c.y == 1u, d.y == 1u);
}

fn init_woff(row0: u32) {
  let nld = (wslots() + 3u) / 4u;
  woff4(0u, row0);
  if (nld > 1u) { woff4(1u, row0); }
  if (nld > 2u) { woff4(2u, row0); }
  if (nld > 3u) { woff4(3u, row0); }
}

fn wblock(base: u32, l: u32, ok: bool) -> vec4f {
  let o = woff[l] + vec4u(base);
  var v = vec4f(dys[o.x], 0.0, 0.0, 0.0);
  if (4u * l + 1u < wslots()) { v.y = dys[o.y]; }
  if (4u * l + 2u < wslots()) { v.z = dys[o.z]; }
  if (4u * l + 3u < wslots()) { v.w = dys[o.w]; }
  return select(vec4f(0.0), v, wok[l] & vec4<bool>(ok));
}

// DIRECTW: opb = the tile's weights of (c, kh) (`base` = c * w_loop + kh * KW), zero if !ok.
fn load_w_blocks(base: u32, ok: bool) {
  let nld = (wslots() + 3u) / 4u;
  opb[0] = wblock(base, 0u, ok);
  if (nld > 1u) { opb[1] = wblock(base, 1u, ok); }
  if (nld > 2u) { opb[2] = wblock(base, 2u, ok); }
  if (nld > 3u) { opb[3] = wblock(base, 3u, ok); }
}

// Index i of a dimension of size n after one reflection at each edge (REFLECT; pad < n, so one
// reflection reaches every padded position; indices further out stay out of range).
fn refl(i: i32, n: u32) -> i32 {
  if (!REFLECT || MODE == 1u) { return i; }
  let j = select(i, -i, i < 0);
  return select(j, 2 * (i32(n) - 1) - j, j >= i32(n));
}

// One source element, 0 outside the image (the index may be garbage then: a bounds-clamped read).
fn ld(rowbase: i32, col0: i32, ok: bool) -> f32 {
  let col = refl(col0, p.src_w);
  let valid = ok && u32(col) < p.src_w;
  return select(0.0, src[u32(rowbase + col)], valid);
}

// Fills win[0..wl) with this lane's source row elements start .. start+wl-1, or with `add`
// (MODE 1 with REFLECT: a border row's mirrored dy row) adds them to what it holds.
fn put_win(k: u32, v: f32, add: bool) {
  if (add) { win[k] += v; } else { win[k] = v; }
}
fn load_window(rowbase: i32, start: i32, ok: bool, wl: u32, add: bool) {
  if (wl > 0u) { put_win(0u, ld(rowbase, start + 0, ok), add); }
  if (wl > 1u) { put_win(1u, ld(rowbase, start + 1, ok), add); }
  if (wl > 2u) { put_win(2u, ld(rowbase, start + 2, ok), add); }
  if (wl > 3u) { put_win(3u, ld(rowbase, start + 3, ok), add); }
  if (wl > 4u) { put_win(4u, ld(rowbase, start + 4, ok), add); }
  if (wl > 5u) { put_win(5u, ld(rowbase, start + 5, ok), add); }
  if (wl > 6u) { put_win(6u, ld(rowbase, start + 6, ok), add); }
  if (wl > 7u) { put_win(7u, ld(rowbase, start + 7, ok), add); }
  if (wl > 8u) { put_win(8u, ld(rowbase, start + 8, ok), add); }
  if (wl > 9u) { put_win(9u, ld(rowbase, start + 9, ok), add); }
  if (wl > 10u) { put_win(10u, ld(rowbase, start + 10, ok), add); }
  if (wl > 11u) { put_win(11u, ld(rowbase, start + 11, ok), add); }
  if (wl > 12u) { put_win(12u, ld(rowbase, start + 12, ok), add); }
  if (wl > 13u) { put_win(13u, ld(rowbase, start + 13, ok), add); }
  if (wl > 14u) { put_win(14u, ld(rowbase, start + 14, ok), add); }
  if (wl > 15u) { put_win(15u, ld(rowbase, start + 15, ok), add); }
  if (wl > 16u) { put_win(16u, ld(rowbase, start + 16, ok), add); }
  if (wl > 17u) { put_win(17u, ld(rowbase, start + 17, ok), add); }
  if (wl > 18u) { put_win(18u, ld(rowbase, start + 18, ok), add); }
  if (wl > 19u) { put_win(19u, ld(rowbase, start + 19, ok), add); }
}

// One aligned source block (4 elements from column `col`, a multiple of 4 off the row start),
// zero outside the image.
fn ld_block(rowbase: i32, col: i32, ok: bool) -> vec4f {
  // (u32 wraps negative columns to large values: one compare tests both bounds)
  let c = vec4u(u32(col)) + vec4u(0u, 1u, 2u, 3u);
  let m = c < vec4u(p.src_w);
  return select(vec4f(0.0), src4[u32(rowbase + col) / 4u], m & vec4<bool>(ok));
}

// COOP: window element e of this lane: strip element S0 + 4*LS*lane + e, shuffled from the lane
// that loaded its block.
fn coop_elem(e: u32, ph: Phase) -> f32 {
  let k = ph.s0 + e;
  let b = lane * LS + k / 4u;
  let src_lane = lane0 + (b & 7u);
  let m = b >> 3u;
  let c = k % 4u;
  var v = subgroupShuffle(blk[0][c], src_lane);
  if (ph.nld > 1u) { v = select(v, subgroupShuffle(blk[1][c], src_lane), m == 1u); }
  if (ph.nld > 2u) { v = select(v, subgroupShuffle(blk[2][c], src_lane), m == 2u); }
  if (ph.nld > 3u) { v = select(v, subgroupShuffle(blk[3][c], src_lane), m == 3u); }
  return v;
}

// COOP: the strip's source span starts at x0 (its first aligned block at x0 - S0); lanes load
// blocks lane, lane + 8, ... and assemble their windows.
fn coop_window(rowbase: i32, x0: i32, ok: bool, ph: Phase) {
  let a = x0 - i32(ph.s0) + 4 * i32(lane);
  blk[0] = ld_block(rowbase, a, ok);
  if (ph.nld > 1u) { blk[1] = vec4f(0.0); if (lane + 8u < ph.nblk) { blk[1] = ld_block(rowbase, a + 32, ok); } }
  if (ph.nld > 2u) { blk[2] = vec4f(0.0); if (lane + 16u < ph.nblk) { blk[2] = ld_block(rowbase, a + 64, ok); } }
  if (ph.nld > 3u) { blk[3] = vec4f(0.0); if (lane + 24u < ph.nblk) { blk[3] = ld_block(rowbase, a + 96, ok); } }
  if (ph.wl > 0u) { win[0] = coop_elem(0u, ph); }
  if (ph.wl > 1u) { win[1] = coop_elem(1u, ph); }
  if (ph.wl > 2u) { win[2] = coop_elem(2u, ph); }
  if (ph.wl > 3u) { win[3] = coop_elem(3u, ph); }
  if (ph.wl > 4u) { win[4] = coop_elem(4u, ph); }
  if (ph.wl > 5u) { win[5] = coop_elem(5u, ph); }
  if (ph.wl > 6u) { win[6] = coop_elem(6u, ph); }
  if (ph.wl > 7u) { win[7] = coop_elem(7u, ph); }
  if (ph.wl > 8u) { win[8] = coop_elem(8u, ph); }
  if (ph.wl > 9u) { win[9] = coop_elem(9u, ph); }
  if (ph.wl > 10u) { win[10] = coop_elem(10u, ph); }
  if (ph.wl > 11u) { win[11] = coop_elem(11u, ph); }
  if (ph.wl > 12u) { win[12] = coop_elem(12u, ph); }
  if (ph.wl > 13u) { win[13] = coop_elem(13u, ph); }
  if (ph.wl > 14u) { win[14] = coop_elem(14u, ph); }
  if (ph.wl > 15u) { win[15] = coop_elem(15u, ph); }
  if (ph.wl > 16u) { win[16] = coop_elem(16u, ph); }
  if (ph.wl > 17u) { win[17] = coop_elem(17u, ph); }
  if (ph.wl > 18u) { win[18] = coop_elem(18u, ph); }
  if (ph.wl > 19u) { win[19] = coop_elem(19u, ph); }
}

// NBR: a lane's window is the aligned block of its own quad (source columns 4q .. 4q+3: one vec4
// load instead of WL scalar loads, each a per-lane loop on llvmpipe) with the HL columns before
// it and the WL - 4 - HL after it from the blocks of the neighbouring lanes, which hold the quads
// before and after it in the row. At a row's ends those columns are padding: zero, or (mode 0,
// REFLECT, HL and WL - 4 - HL <= 3) their mirror images, inside the lane's own block. A lane whose
// neighbour quad belongs to another group of 8 (rows of more than 8 quads) loads them itself.
fn nbr_elem(e: u32, own: vec4f, left: vec4f, right: vec4f) -> f32 {
  if (e < HL) {
    var pad = 0.0;
    if (MODE == 0u && REFLECT) { pad = own[HL - e]; }
    return select(left[4u - HL + e], pad, quad_first);
  }
  if (e < HL + 4u) { return own[e - HL]; }
  let k = e - HL - 4u;
  var pad = 0.0;
  if (MODE == 0u && REFLECT) { pad = own[2u - k]; }
  return select(right[k], pad, quad_last);
}

// Window element e (< wl) of this lane. Lanes next to a group edge load their far neighbour's
// columns themselves (no subgroup operations in that branch).
fn nbr_put(e: u32, wl: u32, own: vec4f, left: vec4f, right: vec4f, rowbase: i32, start: i32, ok: bool) {
  if (e >= wl) { return; }
  var v = nbr_elem(e, own, left, right);
  if ((e < HL && lane == 0u && !quad_first) || (e >= HL + 4u && lane == 7u && !quad_last)) {
    v = ld(rowbase, start + i32(e), ok);
  }
  win[e] = v;
}

fn nbr_put4(e0: u32, wl: u32, own: vec4f, left: vec4f, right: vec4f, rowbase: i32, start: i32, ok: bool) {
  nbr_put(e0, wl, own, left, right, rowbase, start, ok);
  nbr_put(e0 + 1u, wl, own, left, right, rowbase, start, ok);
  nbr_put(e0 + 2u, wl, own, left, right, rowbase, start, ok);
  nbr_put(e0 + 3u, wl, own, left, right, rowbase, start, ok);
}

fn nbr_window(rowbase: i32, start: i32, ok: bool, wl: u32) {
  let own = select(vec4f(0.0), src4[u32(rowbase + start + i32(HL)) / 4u], vec4<bool>(ok));
  let left = subgroupShuffle(own, lane0 + (lane + 7u) % 8u);
  let right = subgroupShuffle(own, lane0 + (lane + 1u) % 8u);
  nbr_put4(0u, wl, own, left, right, rowbase, start, ok);
  if (wl > 4u) { nbr_put4(4u, wl, own, left, right, rowbase, start, ok); }
  if (wl > 8u) { nbr_put4(8u, wl, own, left, right, rowbase, start, ok); }
}

// Window index of tap t for column j: forward reads x at t*DW + j*SW; the data gradient reads dy
// at off(t) + j where off(t) = (RW + PW - t*DW) / SW for the taps of this phase.
fn tap_num(t: u32, rw: u32) -> i32 {
  return i32(rw) + PW - i32(t * DW);
}
fn tap_ok(t: u32, rw: u32) -> bool {
  if (MODE == 1u) { return KW > t && tap_num(t, rw) % i32(SW) == 0; }
  return KW > t;
}
fn tap_vec(t: u32, ph: Phase) -> vec4f {
  if (MODE == 1u) {
    let o = u32(tap_num(t, ph.rw) / i32(SW) - ph.offmin);
    var v = vec4f(win[o], win[o + 1u], win[o + 2u], win[o + 3u]);
    if (REFLECT) {
      v += select(vec4f(0.0), mirror_left(t), quad_first);
      v += select(vec4f(0.0), mirror_right(t, i32(RL)), quad_last);
      v += select(vec4f(0.0), mirror_right(t, i32(RL) + 4), quad_last2);
    }
    return v;
  }
  let o = t * DW;
  return vec4f(win[o], win[o + SW], win[o + 2u * SW], win[o + 3u * SW]);
}

// MODE 1 with REFLECT (window start = quad start - PW, WL = 2 PW + 4): pixel u in [1, PW] of a
// row's first quad also takes padded column PW - u, i.e. dy column PW - u - t at tap t (t <=
// PW - u), window element 2 PW - u - t.
fn mirror_elem_left(t: u32, u: u32) -> f32 {
  let pw = u32(PW);
  if (u >= 1u && u <= pw && t + u <= pw) { return win[2u * pw - u - t]; }
  return 0.0;
}
fn mirror_left(t: u32) -> vec4f {
  return vec4f(0.0, mirror_elem_left(t, 1u), mirror_elem_left(t, 2u), mirror_elem_left(t, 3u));
}
// Pixel u of a quad that starts r pixels before the row's end, u in [r - 1 - PW, r - 2], also takes
// padded column 2 (W - 1) - j + PW, i.e. dy column W - 1 + (r - 1 - u + PW - t) (inside the row
// for t >= r - 1 - u + PW), window element 2 r - 2 - u + 2 PW - t.
fn mirror_elem_right(t: u32, r: i32, u: i32) -> f32 {
  let ti = i32(t);
  let e = 2 * r - 2 - u + 2 * PW - ti;
  if (u >= r - 1 - PW && u <= r - 2 && ti >= r - 1 - u + PW && ti < i32(KW) && e < i32(WL)) {
    return win[u32(e)];
  }
  return 0.0;
}
fn mirror_right(t: u32, r: i32) -> vec4f {
  return vec4f(mirror_elem_right(t, r, 0), mirror_elem_right(t, r, 1), mirror_elem_right(t, r, 2),
               mirror_elem_right(t, r, 3));
}

fn apply_tap(t: u32, ph: Phase) {
  if (tap_ok(t, ph.rw)) { fma_rows(tap_vec(t, ph), t, KW); }
}

// Source window of channel c, the weights of (c, kh) for the row tile, and every tap.
// erow: MODE 1 with REFLECT, the dy rows of the border row's mirrored padded rows (-1: none).
fn channel_taps(c: u32, kh: u32, b: u32, srow: i32, start: i32, row0: u32, ok: bool, okc: bool, erow: vec2i, ph: Phase) {
  let plane = i32(p.src_h * p.src_w);
  let cbase = i32(b * p.src_c + c) * plane;
  let rowbase = cbase + srow * i32(p.src_w);
  if (COOP) {
    // Lane 0 of the strip starts at x0; `ok` is the same for the whole strip.
    coop_window(rowbase, start - 4 * i32(lane * LS), ok && okc, ph);
  } else if (NBR) {
    nbr_window(rowbase, start, ok && okc, ph.wl);
  } else {
    load_window(rowbase, start, ok && okc, ph.wl, false);
  }
  if (MODE == 1u && REFLECT) {
    // (Only border rows' lanes take these branches; no subgroup operations inside.)
    if (okc && u32(erow.x) < p.src_h) { load_window(cbase + erow.x * i32(p.src_w), start, true, ph.wl, true); }
    if (okc && u32(erow.y) < p.src_h) { load_window(cbase + erow.y * i32(p.src_w), start, true, ph.wl, true); }
  }
  if (DIRECTW) {
    load_w_blocks(c * p.w_loop + kh * KW, okc);
  } else {
    // Packed weights [c][kh][row][KW]: the tile's TM*KW values are contiguous and 16-byte aligned.
    load_op_blocks(((c * p.kh + kh) * p.row_pad + row0) * KW / 4u, TM * KW / 4u, okc);
  }
  apply_tap(0u, ph);
  apply_tap(1u, ph);
  apply_tap(2u, ph);
  apply_tap(3u, ph);
  apply_tap(4u, ph);
  apply_tap(5u, ph);
  apply_tap(6u, ph);
}

// rh: MODE 1's stride phase along the height, 0 otherwise; ph: the phase along the width.
fn conv_pixels(col: u32, row0: u32, rh: u32, ph: Phase) {
  let q = col % p.qlen;
  let t = col / p.qlen;
  let y = t % p.ylen;
  let b = t / p.ylen;
  let colok = b < p.nb;
  var start: i32;
  if (MODE == 0u) {
    start = i32(4u * q * SW) - PW;
  } else {
    start = i32(4u * q) + ph.offmin;
  }
  if (DIRECTW) { init_woff(row0); }
  if (NBR || (MODE == 1u && REFLECT)) {
    quad_first = q == 0u;
    quad_last = q + 1u == p.qlen;
    quad_last2 = q + 2u == p.qlen;
  }
  for (var c = 0u; c < p.kloop; c += CU) {
    for (var kh = 0u; kh < p.kh; kh++) {
      var srow: i32;
      if (MODE == 0u) {
        srow = refl(i32(y * p.sh + kh * p.dh) - p.ph, p.src_h);
      } else {
        let num = i32(rh) + p.ph - i32(kh * p.dh);
        if (num % i32(p.sh) != 0) { continue; }
        srow = i32(y) + num / i32(p.sh);
      }
      let ok = colok && srow >= 0 && srow < i32(p.src_h);
      // REFLECT (stride 1): rows 1..P also take padded row P - y, rows H-1-P..H-2 padded row
      // 2 (H - 1) - y + P; their dy rows at this kh (out of range: none).
      var erow = vec2i(-1);
      if (MODE == 1u && REFLECT && colok) {
        let yi = i32(y);
        let hh = i32(p.dst_h);
        if (yi >= 1 && yi <= p.ph) { erow.x = p.ph - yi - i32(kh); }
        if (yi >= hh - 1 - p.ph && yi <= hh - 2) { erow.y = 2 * (hh - 1) - yi + p.ph - i32(kh); }
      }
      channel_taps(c, kh, b, srow, start, row0, ok, true, erow, ph);
      if (CU > 1u) {
        channel_taps(c + 1u, kh, b, srow, start, row0, ok, c + 1u < p.kloop, erow, ph);
      }
    }
  }
  if (!colok) { return; }
  // Destination pixels (y, x0 + j * xstep) of this dispatch.
  var ybase: u32;
  var x0: u32;
  var xstep: u32;
  if (MODE == 0u) {
    ybase = y * p.dst_w;
    x0 = 4u * q;
    xstep = 1u;
  } else {
    ybase = (rh + y * p.sh) * p.dst_w;
    x0 = ph.rw + 4u * q * SW;
    xstep = SW;
    if (rh + y * p.sh >= p.dst_h) { return; }
  }
  let dplane = p.dst_h * p.dst_w;
  let base = b * p.mrows * dplane + ybase;
  let m = vec4<bool>(x0 < p.dst_w, x0 + xstep < p.dst_w, x0 + 2u * xstep < p.dst_w, x0 + 3u * xstep < p.dst_w);
  // A runtime trip count keeps the compiler from unrolling 16 copies of the stores.
  let rows = min(p.tm, p.mrows - row0);
  for (var r = 0u; r < rows; r++) {
    store_px(r, row0, base, dplane, x0, xstep, m, pick(r));
  }
}

fn store_px(r: u32, row0: u32, base: u32, dplane: u32, x0: u32, xstep: u32, m: vec4<bool>, acc_r: vec4f) {
  let row = row0 + r;
  var v = acc_r;
  if (HAS_BIAS) { v += vec4f(bias[row]); }
  let o = base + row * dplane + x0;
  if (MODE != 0u && HAS_ADDEND) {
    if (m.x) { v.x += addend[o]; }
    if (m.y) { v.y += addend[o + xstep]; }
    if (m.z) { v.z += addend[o + 2u * xstep]; }
    if (m.w) { v.w += addend[o + 3u * xstep]; }
  }
  if (MODE == 0u && ACT == 1u) {
    v = vec4f(stable_tanh(v.x), stable_tanh(v.y), stable_tanh(v.z), stable_tanh(v.w));
  } else if (MODE == 0u && ACT == 2u) {
    v = select(ACT_SLOPE * v, v, v > vec4f(0.0));
  }
  if (m.x) { dst[o] = v.x; }
  if (m.y) { dst[o + xstep] = v.y; }
  if (m.z) { dst[o + 2u * xstep] = v.z; }
  if (m.w) { dst[o + 3u * xstep] = v.w; }
}

// XV: window element e (< WL) from the quad's blocks b0, b1, b2 (compile-time indices).
fn xv_elem(e: u32, b0: vec4f, b1: vec4f, b2: vec4f) -> f32 {
  let k = XOFF + e;
  if (k < 4u) { return b0[k]; }
  if (k < 8u) { return b1[k - 4u]; }
  return b2[k - 8u];
}

fn xv_block(j: i32, b0: vec4f, b1: vec4f, b2: vec4f) -> vec4f {
  if (j == 0) { return b0; }
  if (j == 1) { return b1; }
  return b2;
}

// Columns outside the row: zeros from the blocks' masks, or with REFLECT their mirror images
// (branches uniform across lanes, taken at a row's first and last quads only): with XMIRROR from
// the carried blocks (column -k of the first quad is column k of block 0; column W - 1 + k of the
// last quad, window element 4 + PW + k - 1, is component 3 - k of the last block), otherwise
// loaded one by one.
fn xv_put(e: u32, q: u32, b0: vec4f, b1: vec4f, b2: vec4f, rowbase: i32, start: i32, ok: bool) {
  if (e >= WL) { return; }
  var v = xv_elem(e, b0, b1, b2);
  if (REFLECT && XMIRROR) {
    let ie = i32(e);
    if (ie < PW && q == 0u) { v = xv_block(-XBB, b0, b1, b2)[PW - ie]; }
    if (ie >= 4 + PW && q + 1u == p.qlen) { v = xv_block(-XBB, b0, b1, b2)[6 + PW - ie]; }
  } else if (REFLECT && u32(start + i32(e)) >= p.src_w) {
    v = ld(rowbase, start + i32(e), ok);
  }
  win[e] = v;
}

fn xv_window(q: u32, b0: vec4f, b1: vec4f, b2: vec4f, rowbase: i32, start: i32, ok: bool) {
  xv_put(0u, q, b0, b1, b2, rowbase, start, ok);
  xv_put(1u, q, b0, b1, b2, rowbase, start, ok);
  xv_put(2u, q, b0, b1, b2, rowbase, start, ok);
  xv_put(3u, q, b0, b1, b2, rowbase, start, ok);
  xv_put(4u, q, b0, b1, b2, rowbase, start, ok);
  xv_put(5u, q, b0, b1, b2, rowbase, start, ok);
  xv_put(6u, q, b0, b1, b2, rowbase, start, ok);
}

fn weight_grad(col: u32, row0: u32, split: u32) {
  // Column = (ci, kh, tap group of 4).
  let groups = (KW + 3u) / 4u;
  let tg = col % groups;
  let r = col / groups;
  let kh = r % p.kh;
  let ci = r / p.kh;
  let colok = ci < p.src_c;
  let plane = i32(p.src_h * p.src_w);
  let oplane = p.oh * p.ow;
  let total = p.nb * p.oh;
  let rbeg = split * p.rows_per_split;
  let rend = min(total, rbeg + p.rows_per_split);
  let tap0 = i32(4u * tg * DW) - PW;
  // This lane's dy row for the shared operand (rows past M read as zero; with TM = 4, lanes 4..7
  // load rows of the next tile that are not used).
  let okco = row0 + lane < p.mrows;
  for (var rr = rbeg; rr < rend; rr++) {
    let b = rr / p.oh;
    let oh = rr % p.oh;
    let srow = refl(i32(oh * p.sh + kh * p.dh) - p.ph, p.src_h);
    let ok = colok && srow >= 0 && srow < i32(p.src_h);
    let rowbase = i32(b * p.src_c + ci) * plane + srow * i32(p.src_w);
    let dyrow = (b * p.mrows + row0) * oplane + oh * p.ow;
    // XV: the blocks before the first quad's last one.
    var xb0 = vec4f(0.0);
    var xb1 = vec4f(0.0);
    if (XV && XNB > 1u) { xb0 = ld_block(rowbase, 4 * XBB, ok); }
    if (XV && XNB > 2u) { xb1 = ld_block(rowbase, 4 * (XBB + 1), ok); }
    for (var q = 0u; q < p.qlen; q++) {
      let ow0 = 4u * q;
      if (XV) {
        let fresh = ld_block(rowbase, 4 * (i32(q) + XBB + i32(XNB) - 1), ok);
        if (XNB == 1u) {
          xv_window(q, fresh, fresh, fresh, rowbase, i32(ow0) + tap0, ok);
        } else if (XNB == 2u) {
          xv_window(q, xb0, fresh, fresh, rowbase, i32(ow0) + tap0, ok);
          xb0 = fresh;
        } else {
          xv_window(q, xb0, xb1, fresh, rowbase, i32(ow0) + tap0, ok);
          xb0 = xb1;
          xb1 = fresh;
        }
      } else {
        load_window(rowbase, i32(ow0 * SW) + tap0, ok, WL, false);
      }
      // Shared operand: dy[b, row0 + r, oh, ow0 .. ow0+3] for r < TM as 4*TM values, element
      // r*4 + k (row r, output column ow0 + k).
      if (DYV) {
        // Rows are 16-byte aligned: block r = dy row r's 4 values (lanes 0..7 then 8..15).
        let okr = vec4<bool>(okco);
        opb[0] = select(vec4f(0.0), op4[(dyrow + (lane % 8u) * oplane + ow0) / 4u], okr);
        if (TM > 8u) {
          let co2 = row0 + 8u + lane % 8u;
          opb[1] = select(vec4f(0.0), op4[(dyrow + (8u + lane % 8u) * oplane + ow0) / 4u], vec4<bool>(co2 < p.mrows));
        }
      } else {
        let m = vec4<bool>(ow0 < p.ow, ow0 + 1u < p.ow, ow0 + 2u < p.ow, ow0 + 3u < p.ow);
        let i0 = dyrow + (lane % 8u) * oplane + ow0;
        opb[0] = select(vec4f(0.0), vec4f(dys[i0], dys[i0 + 1u], dys[i0 + 2u], dys[i0 + 3u]),
                        m & vec4<bool>(row0 + lane % 8u < p.mrows));
        if (TM > 8u) {
          let i1 = i0 + 8u * oplane;
          opb[1] = select(vec4f(0.0), vec4f(dys[i1], dys[i1 + 1u], dys[i1 + 2u], dys[i1 + 3u]),
                          m & vec4<bool>(row0 + 8u + lane % 8u < p.mrows));
        }
      }
      // Output column k of the quad pairs with x window elements k*SW + j*DW (tap 4*tg + j).
      fma_rows(vec4f(win[0], win[DW], win[2u * DW], win[3u * DW]), 0u, 4u);
      fma_rows(vec4f(win[SW], win[SW + DW], win[SW + 2u * DW], win[SW + 3u * DW]), 1u, 4u);
      fma_rows(vec4f(win[2u * SW], win[2u * SW + DW], win[2u * SW + 2u * DW], win[2u * SW + 3u * DW]), 2u, 4u);
      fma_rows(vec4f(win[3u * SW], win[3u * SW + DW], win[3u * SW + 2u * DW], win[3u * SW + 3u * DW]), 3u, 4u);
    }
  }
  if (!colok) { return; }
  // dst[split][co][ci][kh][kw]
  let ncol = p.src_c * p.kh * p.nkw;
  let obase = split * p.mrows * ncol + (ci * p.kh + kh) * p.nkw + 4u * tg;
  let m = vec4<bool>(4u * tg < KW, 4u * tg + 1u < KW, 4u * tg + 2u < KW, 4u * tg + 3u < KW);
  let rows = min(p.tm, p.mrows - row0);
  for (var r2 = 0u; r2 < rows; r2++) {
    store_px(r2, row0, obase, ncol, 0u, 1u, m, pick(r2));
  }
}

// #include "pick_acc.wgsl"
// #include "activation.wgsl"

// The work of a workgroup is one tile (columns col, one per lane; rows row0 .. row0 + TM - 1;
// grid z) or, with DYN, every tile its groups of 8 lanes grab: each group grabs until it gets one
// past the last, so the grabs of a dispatch number tiles + groups, and the group that makes the
// last one resets the counter for the next dispatch. Each entry point calls its tile function once
// per loop: every call site of a function is compiled (even under a false override), and compiling
// is most of a first training step (measured: a third call site of conv_pixels took the 64x64 G+D
// warm-up from 19 s to 33 s).
struct Tile {
  col: u32,
  row0: u32,
  z: u32,
  ok: bool,
}

fn start_lanes(sid: u32) {
  // (private variables start at zero: the accumulators need no initialization)
  lane = sid % 8u;
  lane0 = sid - lane;
}

fn next_tile(wid: vec3u, lid: u32, nwg: vec3u) -> Tile {
  if (!DYN) { return Tile(wid.x * WG + lid, wid.y * TM, wid.z, true); }
  let ntiles = p.tiles_x * p.tiles_y * p.tiles_z;
  var t = 0u;
  if (lane == 0u) { t = atomicAdd(&sched[0], 1u); }
  t = subgroupShuffle(t, lane0);
  if (t >= ntiles) {
    let ngroups = nwg.x * nwg.y * nwg.z * (WG / 8u);
    if (lane == 0u && t == ntiles + ngroups - 1u) { atomicStore(&sched[0], 0u); }
    return Tile(0u, 0u, 0u, false);
  }
  acc = array<vec4f, 16>();
  return Tile((t % p.tiles_x) * 8u + lane, ((t / p.tiles_x) % p.tiles_y) * TM, t / (p.tiles_x * p.tiles_y), true);
}

// Modes 0 and 1 with one width phase.
@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_invocation_id) sid: u32, @builtin(num_workgroups) nwg: vec3u) {
  start_lanes(sid);
  loop {
    let t = next_tile(wid, lid, nwg);
    if (!t.ok) { break; }
    conv_pixels(t.col, t.row0, t.z, phase0());
    if (!DYN) { break; }
  }
}

// MODE 1 with two width phases (NWP 2): a copy of the loop for each, picked by z (uniform per tile).
@compute @workgroup_size(WG)
fn main_phases2(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
                @builtin(subgroup_invocation_id) sid: u32, @builtin(num_workgroups) nwg: vec3u) {
  start_lanes(sid);
  loop {
    let t = next_tile(wid, lid, nwg);
    if (!t.ok) { break; }
    if (t.z < p.nhp) {
      conv_pixels(t.col, t.row0, t.z, phase0());
    } else {
      conv_pixels(t.col, t.row0, t.z - p.nhp, phase1());
    }
    if (!DYN) { break; }
  }
}

// MODE 2.
@compute @workgroup_size(WG)
fn wgrad(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_index) lid: u32,
         @builtin(subgroup_invocation_id) sid: u32, @builtin(num_workgroups) nwg: vec3u) {
  start_lanes(sid);
  loop {
    let t = next_tile(wid, lid, nwg);
    if (!t.ok) { break; }
    weight_grad(t.col, t.row0, t.z);
    if (!DYN) { break; }
  }
}

// Packs weights for modes 0, 1: out[c][kh][row][t] = w[row * w_row + c * w_loop + kh * KW + t],
// zero for rows >= mrows (row < row_pad). Bindings: 1 weights, 2 packed output.
@group(0) @binding(1) var<storage, read> pk_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> pk_out: array<f32>;

@compute @workgroup_size(64)
fn pack(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 64u;
  if (i >= p.total) { return; }
  let t = i % KW;
  let row = (i / KW) % p.row_pad;
  let ckh = i / (KW * p.row_pad);
  let kh = ckh % p.kh;
  let c = ckh / p.kh;
  var v = 0.0;
  if (row < p.mrows) { v = pk_in[row * p.w_row + c * p.w_loop + kh * KW + t]; }
  pk_out[i] = v;
}

// Reference kernels, one invocation per output element (used by the benchmark as a baseline and
// for geometry the fast kernel does not cover: kernels wider than 7 taps, windows beyond WMAX).
struct NaiveParams {
  nb: u32, ci: u32, h: u32, w: u32,
  co: u32, oh: u32, ow: u32, kh: u32,
  kw: u32, sh: u32, sw: u32, ph: i32,
  pw: i32, dh: u32, dw: u32, total: u32,
}
@group(0) @binding(0) var<uniform> np: NaiveParams;
@group(0) @binding(1) var<storage, read> n_a: array<f32>;
@group(0) @binding(2) var<storage, read> n_b: array<f32>;
@group(0) @binding(3) var<storage, read> n_bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> n_out: array<f32>;

@compute @workgroup_size(64)
fn naive(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 64u;
  if (i >= np.total) { return; }
  var s = 0.0;
  if (MODE == 0u) {
    // n_a = x, n_b = w; i over [nb, co, oh, ow]
    let ow = i % np.ow;
    let oh = (i / np.ow) % np.oh;
    let co = (i / (np.ow * np.oh)) % np.co;
    let b = i / (np.ow * np.oh * np.co);
    for (var ci = 0u; ci < np.ci; ci++) {
      for (var kh = 0u; kh < np.kh; kh++) {
        let ih = refl(i32(oh * np.sh + kh * np.dh) - np.ph, np.h);
        if (ih < 0 || ih >= i32(np.h)) { continue; }
        for (var kw = 0u; kw < np.kw; kw++) {
          let iw = refl(i32(ow * np.sw + kw * np.dw) - np.pw, np.w);
          if (iw < 0 || iw >= i32(np.w)) { continue; }
          s += n_a[((b * np.ci + ci) * np.h + u32(ih)) * np.w + u32(iw)] *
               n_b[((co * np.ci + ci) * np.kh + kh) * np.kw + kw];
        }
      }
    }
    if (HAS_BIAS) { s += n_bias[co]; }
  } else if (MODE == 1u) {
    // n_a = dy, n_b = w; i over [nb, ci, h, w]
    let iw = i % np.w;
    let ih = (i / np.w) % np.h;
    let ci = (i / (np.w * np.h)) % np.ci;
    let b = i / (np.w * np.h * np.ci);
    for (var co = 0u; co < np.co; co++) {
      for (var kh = 0u; kh < np.kh; kh++) {
        let nh = i32(ih) + np.ph - i32(kh * np.dh);
        if (nh < 0 || nh % i32(np.sh) != 0 || nh / i32(np.sh) >= i32(np.oh)) { continue; }
        for (var kw = 0u; kw < np.kw; kw++) {
          let nw = i32(iw) + np.pw - i32(kw * np.dw);
          if (nw < 0 || nw % i32(np.sw) != 0 || nw / i32(np.sw) >= i32(np.ow)) { continue; }
          s += n_a[((b * np.co + co) * np.oh + u32(nh / i32(np.sh))) * np.ow + u32(nw / i32(np.sw))] *
               n_b[((co * np.ci + ci) * np.kh + kh) * np.kw + kw];
        }
      }
    }
    if (HAS_BIAS) { s += n_bias[ci]; }
  } else {
    // n_a = x, n_b = dy; i over [co, ci, kh, kw]
    let kw = i % np.kw;
    let kh = (i / np.kw) % np.kh;
    let ci = (i / (np.kw * np.kh)) % np.ci;
    let co = i / (np.kw * np.kh * np.ci);
    for (var b = 0u; b < np.nb; b++) {
      for (var oh = 0u; oh < np.oh; oh++) {
        let ih = refl(i32(oh * np.sh + kh * np.dh) - np.ph, np.h);
        if (ih < 0 || ih >= i32(np.h)) { continue; }
        for (var ow = 0u; ow < np.ow; ow++) {
          let iw = refl(i32(ow * np.sw + kw * np.dw) - np.pw, np.w);
          if (iw < 0 || iw >= i32(np.w)) { continue; }
          s += n_a[((b * np.ci + ci) * np.h + u32(ih)) * np.w + u32(iw)] *
               n_b[((b * np.co + co) * np.oh + oh) * np.ow + ow];
        }
      }
    }
  }
  n_out[i] = s;
}
