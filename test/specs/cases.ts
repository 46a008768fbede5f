/** Every op family's gradient-check cases. Each family adds its own file here. */
import type { GradCase } from './harness.js';
import { elementwiseCases } from './cases-elementwise.js';
import { lossCases } from './cases-loss.js';
import { nnCases } from './cases-nn.js';
import { convCases } from './cases-conv.js';

export const allCases: GradCase[] = [...elementwiseCases, ...lossCases, ...nnCases, ...convCases];
