/**
 * NFR violation detection: a rule is violated when its requirement fails in every sample of a whole window
 * (one spike is not a violation), and cleared only when the metric has come back inside the threshold by a
 * margin (CLEAR_MARGIN) for a whole window again (hysteresis: a value hovering at the threshold does not
 * flap). A gap in the samples (a node that went silent) restarts the window: what happened in it is not
 * known. Pure: time is passed in; the control plane feeds it samples as metrics arrive.
 */
import { CLEAR_MARGIN, ruleHolds, type NfrRule } from '../config/nfr-rules.js';

/** What is judged: one rule of one replica on one node (a replica that moves starts afresh). */
export interface NfrSubject {
  service: string;
  replica: number;
  node: string;
  rule: NfrRule;
}

export interface Violation extends NfrSubject {
  /** Since when the requirement failed (the start of the window that made it a violation). */
  since: number;
  /** The latest sample, and whether it still fails the requirement (it may be back inside but not yet cleared). */
  value: number;
  failing: boolean;
  at: number;
}

export type Transition = { kind: 'violated'; violation: Violation } | { kind: 'cleared'; violation: Violation };

interface SubjectState {
  subject: NfrSubject;
  violated: boolean;
  /** Start of the run of samples that fail (not violated) or that hold by the margin (violated). */
  runSince?: number;
  since?: number;
  lastAt: number;
  value: number;
}

export const subjectKey = (s: Pick<NfrSubject, 'service' | 'replica' | 'node'> & { rule: Pick<NfrRule, 'text'> }) => `${s.service}#${s.replica}@${s.node}|${s.rule.text}`;

export class ViolationDetector {
  private readonly states = new Map<string, SubjectState>();

  /** @param maxGapMs samples further apart than this do not make one run (a silent node's window restarts). */
  constructor(private readonly maxGapMs: number) {}

  observe(subject: NfrSubject, value: number, at: number): Transition | undefined {
    const key = subjectKey(subject);
    let state = this.states.get(key);
    if (!state) {
      state = { subject, violated: false, lastAt: at, value };
      this.states.set(key, state);
    }
    if (at - state.lastAt > this.maxGapMs) state.runSince = undefined;
    state.lastAt = at;
    state.value = value;
    const { rule } = subject;
    if (!state.violated) {
      if (ruleHolds(rule, value)) {
        state.runSince = undefined;
        return undefined;
      }
      state.runSince ??= at;
      if (at - state.runSince < rule.windowMs) return undefined;
      state.violated = true;
      state.since = state.runSince;
      state.runSince = undefined;
      return { kind: 'violated', violation: this.violationOf(state) };
    }
    if (!ruleHolds(rule, value, CLEAR_MARGIN)) {
      state.runSince = undefined;
      return undefined;
    }
    state.runSince ??= at;
    if (at - state.runSince < rule.windowMs) return undefined;
    const violation = this.violationOf(state);
    state.violated = false;
    state.runSince = undefined;
    state.since = undefined;
    return { kind: 'cleared', violation };
  }

  /** Violations under way. */
  violations(): Violation[] {
    const result: Violation[] = [];
    for (const state of this.states.values()) if (state.violated) result.push(this.violationOf(state));
    return result;
  }

  /**
   * Forgets the subjects `keep` rejects (a replica moved, scaled away, a rule removed); returns the
   * violations that ended that way.
   */
  retain(keep: (subject: NfrSubject) => boolean): Violation[] {
    const ended: Violation[] = [];
    for (const [key, state] of this.states) {
      if (keep(state.subject)) continue;
      if (state.violated) ended.push(this.violationOf(state));
      this.states.delete(key);
    }
    return ended;
  }

  get size(): number {
    return this.states.size;
  }

  private violationOf(state: SubjectState): Violation {
    return { ...state.subject, since: state.since!, value: state.value, failing: !ruleHolds(state.subject.rule, state.value), at: state.lastAt };
  }
}
