/** Networking for AsynDGAN: wire protocol, generator server, discriminator node. */
export * from './protocol.js';
export * from './codec.js';
export * from './validate.js';
export * from './backend.js';
export * from './augment.js';
export * from './sampling.js';
export * from './aggregate.js';
export * from './checkpoint.js';
export * from './tokens.js';
export * from './admission.js';
export { StartupError } from './errors.js';
export * from './backoff.js';
export * from './log.js';
export * from './modalities.js';
export { NodeRegistry, type NodeRecord, type NodeSnapshot, type NodeStats as ServerNodeStats } from './registry.js';
export * from './coordinator.js';
export * from './server.js';
export * from './node.js';
