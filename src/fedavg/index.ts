/** FedAvg-GAN (the FLGAN design) on the AsynDGAN transport: aggregation, messages, server, site. */
export * from './aggregate.js';
export * from './protocol.js';
export * from './models.js';
export * from './coordinator.js';
export * from './server.js';
export * from './local-gan.js';
export * from './node.js';
export * from './defaults.js';
