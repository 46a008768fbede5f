/**
 * Membership inference against a released generator: does G reproduce its training images better
 * than it renders held-out masks? Score per slice = -mean |G(mask) - real| (higher: "member").
 * Pure; the caller renders G(mask) and supplies the real images of both groups.
 */
import { mae, rocAuc } from './scores.js';

export interface MembershipResult {
  /** ROC AUC of members vs non-members (0.5: no better than chance). */
  auc: number;
  members: number;
  nonMembers: number;
  /** Mean |G(mask) - real| of each group. */
  memberL1: number;
  nonMemberL1: number;
}

export function membershipAuc(
  members: readonly { render: ArrayLike<number>; real: ArrayLike<number> }[],
  nonMembers: readonly { render: ArrayLike<number>; real: ArrayLike<number> }[],
): MembershipResult {
  const score = (x: { render: ArrayLike<number>; real: ArrayLike<number> }) => -mae(x.render, x.real);
  const pos = members.map(score);
  const neg = nonMembers.map(score);
  const mean = (xs: number[]) => -xs.reduce((s, v) => s + v, 0) / xs.length;
  return { auc: rocAuc(pos, neg), members: pos.length, nonMembers: neg.length, memberL1: mean(pos), nonMemberL1: mean(neg) };
}
