/** A node's privacy defences: clipping, noise, RDP accounting, query guard, limits, presets. */
export * from './noise.js';
export * from './clip.js';
export * from './rdp.js';
export * from './accountant.js';
export * from './query-guard.js';
export * from './limits.js';
export * from './presets.js';
export * from './node-privacy.js';
export * from './status.js';
