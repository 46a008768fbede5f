/**
 * File formats and pictures: crash-safe writes, safetensors checkpoints, PNG, an RGB canvas with a
 * built-in bitmap font, image grids and charts. Node built-ins only.
 */
export * from './atomic.js';
export * from './crc32.js';
export * from './safetensors.js';
export * from './png.js';
export * from './image.js';
export * from './chart.js';
export * from './crc32c.js';
export * from './tfevents.js';
export * from './scalar-log.js';
