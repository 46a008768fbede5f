/**
 * Data pipeline public API: data set types and tensor helpers, the embedded phantom, NIfTI I/O,
 * slice preparation, BraTS / MRIcron / PNG-pair loaders, paired augmentation and the seeded PRNG.
 */
export * from './sample.js';
export * from './phantom.js';
export * from './nifti.js';
export * from './slices.js';
export * from './brats.js';
export * from './mricron.js';
export * from './mricron-fixture.js';
export * from './augment.js';
export * from './pngpairs.js';
