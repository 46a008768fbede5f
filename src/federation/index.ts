/**
 * The federation on the engine: the generator server's and the hospital node's backends, plus the
 * network layer they plug into (protocol, server, node). `asyndgan server` and `asyndgan node` are
 * built from exactly these pieces.
 */
export { EngineGenerator } from './generator-backend.js';
export { EngineDiscriminator, type RealImages, type EngineDiscriminatorOptions } from './discriminator-backend.js';
export * from '../net/index.js';
