/**
 * The node's own limits on what the server may ask of it. Every session parameter that changes
 * what a reply reveals is bounded here: lambdaL1 (a large L1 weight turns the reply into an exact
 * per-pixel sign oracle) and batchSize (the most samples one reply may cover, hence its
 * sensitivity). A welcome whose config exceeds a limit is refused.
 */

export interface NodeLimits {
  /** Largest lambdaL1 this node accepts (Infinity: any). Ignored when the node sends no L1 term. */
  maxLambdaL1: number;
  /** Largest batchSize (samples per request) this node accepts (Infinity: any). */
  maxBatch: number;
}

/** The session parameters the limits apply to (a subset of the welcome's config). */
export interface AskedParameters {
  lambdaL1: number;
  batchSize: number;
}

export interface LimitBreach {
  /** Config field, e.g. "lambdaL1". */
  parameter: keyof AskedParameters;
  asked: number;
  limit: number;
  /** One line naming the parameter and both values. */
  message: string;
}

/** The first parameter of `asked` above `limits`, or undefined when all are within them. */
export function exceededLimit(asked: AskedParameters, limits: NodeLimits, opts: { l1: boolean }): LimitBreach | undefined {
  const checks: [keyof AskedParameters, number, string][] = [
    ['batchSize', limits.maxBatch, '--max-batch'],
    ...(opts.l1 ? [['lambdaL1', limits.maxLambdaL1, '--max-lambda-l1'] as [keyof AskedParameters, number, string]] : []),
  ];
  for (const [parameter, limit, flag] of checks) {
    const value = asked[parameter];
    if (!(value <= limit)) {
      return { parameter, asked: value, limit, message: `the server asks config.${parameter} = ${value}, above this node's limit ${limit} (${flag})` };
    }
  }
  return undefined;
}
