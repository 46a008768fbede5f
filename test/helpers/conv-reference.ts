/** The plain TypeScript convolution reference shared by the conv tests: every product of a 2-D convolution. */

/** The geometry the references need (a subset of the engine's ConvGeometry). */
export interface ConvRefGeometry {
  nb: number; ci: number; h: number; w: number; co: number; oh: number; ow: number;
  kh: number; kw: number; sh: number; sw: number; ph: number; pw: number; dh: number; dw: number;
}

/** Mirror of index i into [0, n) without repeating the edge (ReflectionPad2d, pad < n). */
export function reflectIndex(i: number, n: number): number {
  if (i < 0) return -i;
  if (i >= n) return 2 * (n - 1) - i;
  return i;
}

/**
 * Calls f(xIndex, yIndex, wIndex) for every product of the convolution: with zero padding the
 * products that fall on the padding are skipped; with reflect padding they read the mirrored pixel.
 */
export function eachConvProduct(g: ConvRefGeometry, f: (xi: number, yi: number, wi: number) => void, pad: 'zeros' | 'reflect' = 'zeros'): void {
  const at = (i: number, n: number): number => (pad === 'reflect' ? reflectIndex(i, n) : i < 0 || i >= n ? -1 : i);
  for (let b = 0; b < g.nb; b++)
    for (let co = 0; co < g.co; co++)
      for (let oh = 0; oh < g.oh; oh++)
        for (let ow = 0; ow < g.ow; ow++)
          for (let ci = 0; ci < g.ci; ci++)
            for (let kh = 0; kh < g.kh; kh++) {
              const ih = at(oh * g.sh - g.ph + kh * g.dh, g.h);
              if (ih < 0) continue;
              for (let kw = 0; kw < g.kw; kw++) {
                const iw = at(ow * g.sw - g.pw + kw * g.dw, g.w);
                if (iw < 0) continue;
                f(((b * g.ci + ci) * g.h + ih) * g.w + iw, ((b * g.co + co) * g.oh + oh) * g.ow + ow, ((co * g.ci + ci) * g.kh + kh) * g.kw + kw);
              }
            }
}
