// The row walk shared by the planar kernels (pool, resample, pad; grid from src/engine/ops/rowgrid.ts):
// an invocation owns one column (wid.x * WG + lid) and walks ROWS consecutive rows of all planes
// stacked (output rows for forwards, input rows for backwards). The walk carries the stacked row r,
// the plane, and the row within the plane:
//
//     for (var w = row_walk(wid, ng, p.rows, p.oh); w.r < w.end; row_next(&w, p.oh)) { ... }

override ROWS: u32 = 8u;

struct RowWalk { r: u32, end: u32, plane: u32, row: u32 }

// This invocation's walk over `rows` stacked rows of planes `per_plane` rows high.
fn row_walk(wid: vec3u, ng: vec3u, rows: u32, per_plane: u32) -> RowWalk {
  let r0 = (wid.y + wid.z * ng.y) * ROWS;
  return RowWalk(r0, min(r0 + ROWS, rows), r0 / per_plane, r0 % per_plane);
}

fn row_next(w: ptr<function, RowWalk>, per_plane: u32) {
  (*w).r++;
  (*w).row++;
  if ((*w).row == per_plane) {
    (*w).row = 0u;
    (*w).plane++;
  }
}
