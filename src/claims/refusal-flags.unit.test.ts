import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CouponTemplate } from '../coupons/template-repository.ts';
import { ClaimRefusal } from './claim-gate.ts';
import { parseFlagMessage, REFUSAL_FLAGS_CHANNEL } from './refusal-flag-subscriber.ts';
import { MAX_LIMITED_USERS_PER_EVENT, RefusalFlags, SHORTCUT_TTL_MS } from './refusal-flags.ts';

const template = (id: string, settingsVersion = 1) => ({ id, settingsVersion }) as CouponTemplate;

function subscribedFlags() {
  let now = 0;
  const flags = new RefusalFlags(SHORTCUT_TTL_MS, () => now);
  flags.confirmSubscription();
  return { flags, advance: (ms: number) => { now += ms; } };
}

describe('RefusalFlags', () => {
  it('learns an event refusal and a user at the limit from the gate, and shortcuts them', () => {
    const { flags } = subscribedFlags();
    flags.learn(flags.snapshot(), template('t1'), 'alice', ClaimRefusal.LimitReached);
    expect(flags.refusalFor(template('t1'), 'alice')).toBe(ClaimRefusal.LimitReached);
    expect(flags.refusalFor(template('t1'), 'bob')).toBeUndefined();
    flags.learn(flags.snapshot(), template('t1'), 'bob', ClaimRefusal.SoldOut);
    expect(flags.refusalFor(template('t1'), 'carol')).toBe(ClaimRefusal.SoldOut);
    expect(flags.refusalFor(template('t2'), 'carol')).toBeUndefined();
  });

  it('learns nothing from refusals that are not final (not open yet, a reused key)', () => {
    const { flags } = subscribedFlags();
    flags.learn(flags.snapshot(), template('t1'), 'alice', ClaimRefusal.NotOpen);
    flags.learn(flags.snapshot(), template('t1'), 'alice', ClaimRefusal.IdempotencyKeyReused);
    expect(flags.refusalFor(template('t1'), 'alice')).toBeUndefined();
  });

  it('learns nothing from an answer a message overtook (the change may have come after the gate decided)', () => {
    const { flags } = subscribedFlags();
    const snapshot = flags.snapshot();
    flags.onMessage({ kind: 'changed', templateId: 't1', version: 2, refusal: 0 });
    flags.learn(snapshot, template('t1'), 'alice', ClaimRefusal.Paused);
    expect(flags.refusalFor(template('t1'), 'alice')).toBeUndefined();
  });

  it('shortcuts nothing and learns nothing without a confirmed subscription; losing it forgets everything', () => {
    const flags = new RefusalFlags(SHORTCUT_TTL_MS, () => 0);
    flags.learn(flags.snapshot(), template('t1'), 'alice', ClaimRefusal.SoldOut);
    flags.onMessage({ kind: 'sold-out', templateId: 't1', version: 1 });
    flags.confirmSubscription();
    expect(flags.refusalFor(template('t1'), 'alice')).toBeUndefined();
    flags.onMessage({ kind: 'sold-out', templateId: 't1', version: 1 });
    flags.learn(flags.snapshot(), template('t1'), 'alice', ClaimRefusal.LimitReached);
    const snapshot = flags.snapshot();
    flags.loseSubscription();
    expect(flags.limitedUserCount).toBe(0);
    flags.confirmSubscription();
    expect(flags.refusalFor(template('t1'), 'alice')).toBeUndefined();
    flags.learn(snapshot, template('t1'), 'alice', ClaimRefusal.SoldOut);
    expect(flags.refusalFor(template('t1'), 'alice')).toBeUndefined();
  });

  it('a change of the event drops its flag and its users at the limit, and sets what the change refuses', () => {
    const { flags } = subscribedFlags();
    flags.onMessage({ kind: 'sold-out', templateId: 't1', version: 1 });
    flags.learn(flags.snapshot(), template('t1'), 'alice', ClaimRefusal.LimitReached);
    flags.onMessage({ kind: 'changed', templateId: 't1', version: 2, refusal: 0 });
    expect(flags.refusalFor(template('t1', 2), 'alice')).toBeUndefined();
    expect(flags.refusalFor(template('t1', 2), 'bob')).toBeUndefined();
    flags.onMessage({ kind: 'changed', templateId: 't1', version: 3, refusal: ClaimRefusal.Paused });
    expect(flags.refusalFor(template('t1', 2), 'bob')).toBe(ClaimRefusal.Paused);
  });

  it('a claim carrying a newer settings version than a shortcut goes to the gate', () => {
    const { flags } = subscribedFlags();
    flags.onMessage({ kind: 'changed', templateId: 't1', version: 4, refusal: ClaimRefusal.Closed });
    flags.learn(flags.snapshot(), template('t2', 4), 'alice', ClaimRefusal.LimitReached);
    expect(flags.refusalFor(template('t1', 4), 'x')).toBe(ClaimRefusal.Closed);
    expect(flags.refusalFor(template('t1', 5), 'x')).toBeUndefined();
    expect(flags.refusalFor(template('t2', 5), 'alice')).toBeUndefined();
  });

  it(`trusts no shortcut longer than ${SHORTCUT_TTL_MS} ms without a new confirmation`, () => {
    const { flags, advance } = subscribedFlags();
    flags.onMessage({ kind: 'sold-out', templateId: 't1', version: 1 });
    flags.learn(flags.snapshot(), template('t2'), 'alice', ClaimRefusal.LimitReached);
    advance(SHORTCUT_TTL_MS - 1);
    expect(flags.refusalFor(template('t1'), 'x')).toBe(ClaimRefusal.SoldOut);
    expect(flags.refusalFor(template('t2'), 'alice')).toBe(ClaimRefusal.LimitReached);
    advance(1);
    expect(flags.refusalFor(template('t1'), 'x')).toBeUndefined();
    expect(flags.refusalFor(template('t2'), 'alice')).toBeUndefined();
  });

  it('with a TTL of 0 shortcuts nothing', () => {
    const flags = new RefusalFlags(0, () => 0);
    flags.confirmSubscription();
    flags.onMessage({ kind: 'sold-out', templateId: 't1', version: 1 });
    flags.learn(flags.snapshot(), template('t1'), 'alice', ClaimRefusal.LimitReached);
    expect(flags.refusalFor(template('t1'), 'alice')).toBeUndefined();
    expect(flags.limitedUserCount).toBe(0);
  });

  it('takes the users another process announced at the limit, for an event it holds, unless a newer change came first', () => {
    const { flags } = subscribedFlags();
    // No record of t1 yet (nothing claimed or changed here): nothing is kept.
    flags.onMessage({ kind: 'limited', templateId: 't1', version: 1, userIds: ['alice'] });
    expect(flags.refusalFor(template('t1'), 'alice')).toBeUndefined();
    flags.learn(flags.snapshot(), template('t1'), 'zoe', ClaimRefusal.LimitReached);
    // Only adds refusals: a gate answer in flight meanwhile still teaches.
    const snapshot = flags.snapshot();
    flags.onMessage({ kind: 'limited', templateId: 't1', version: 1, userIds: ['alice', 'bob'] });
    flags.learn(snapshot, template('t1'), 'carol', ClaimRefusal.LimitReached);
    expect(['alice', 'bob', 'carol', 'dave'].map((user) => flags.refusalFor(template('t1'), user)))
      .toEqual([ClaimRefusal.LimitReached, ClaimRefusal.LimitReached, ClaimRefusal.LimitReached, undefined]);
    // A change to version 2 (the limit raised), then an announcement judged by version 1 arriving late.
    flags.onMessage({ kind: 'changed', templateId: 't1', version: 2, refusal: 0 });
    flags.onMessage({ kind: 'limited', templateId: 't1', version: 1, userIds: ['alice'] });
    expect(flags.refusalFor(template('t1', 1), 'alice')).toBeUndefined();
    flags.onMessage({ kind: 'limited', templateId: 't1', version: 2, userIds: ['erin'] });
    expect(flags.refusalFor(template('t1', 2), 'erin')).toBe(ClaimRefusal.LimitReached);
    // A change seen for an event never claimed here keeps its version for late announcements too.
    flags.onMessage({ kind: 'changed', templateId: 't2', version: 5, refusal: 0 });
    flags.onMessage({ kind: 'limited', templateId: 't2', version: 4, userIds: ['frank'] });
    expect(flags.refusalFor(template('t2', 4), 'frank')).toBeUndefined();
  });

  it('takes no announced users without a confirmed subscription', () => {
    const flags = new RefusalFlags(SHORTCUT_TTL_MS, () => 0);
    // The change gives this process a record of t1; the announcement comes before the confirmation.
    flags.onMessage({ kind: 'changed', templateId: 't1', version: 1, refusal: 0 });
    flags.onMessage({ kind: 'limited', templateId: 't1', version: 1, userIds: ['alice'] });
    flags.confirmSubscription();
    expect(flags.refusalFor(template('t1'), 'alice')).toBeUndefined();
  });

  it('bounds the users it remembers per event and in total', () => {
    const { flags } = subscribedFlags();
    for (let i = 0; i < MAX_LIMITED_USERS_PER_EVENT + 10; i += 1) flags.learn(flags.snapshot(), template('t1'), `u${i}`, ClaimRefusal.LimitReached);
    expect(flags.limitedUserCount).toBe(MAX_LIMITED_USERS_PER_EVENT);
    expect(flags.refusalFor(template('t1'), 'u0')).toBeUndefined();
    expect(flags.refusalFor(template('t1'), `u${MAX_LIMITED_USERS_PER_EVENT + 9}`)).toBe(ClaimRefusal.LimitReached);
    for (let e = 2; e <= 12; e += 1) {
      for (let i = 0; i < MAX_LIMITED_USERS_PER_EVENT; i += 1) flags.learn(flags.snapshot(), template(`t${e}`), `u${i}`, ClaimRefusal.LimitReached);
    }
    expect(flags.limitedUserCount).toBe(100_000);
    flags.onMessage({ kind: 'changed', templateId: 't1', version: 2, refusal: 0 });
    expect(flags.limitedUserCount).toBe(100_000 - MAX_LIMITED_USERS_PER_EVENT);
  });
});

describe('refusal-flags messages', () => {
  it('parses what the scripts publish and nothing else', () => {
    expect(parseFlagMessage('s stampede:{tpl:abc}:state 3')).toEqual({ kind: 'sold-out', templateId: 'abc', version: 3 });
    expect(parseFlagMessage('c stampede:{tpl:abc}:state 4 -7')).toEqual({ kind: 'changed', templateId: 'abc', version: 4, refusal: ClaimRefusal.Paused });
    expect(parseFlagMessage('c stampede:{tpl:abc}:state 4 0')).toEqual({ kind: 'changed', templateId: 'abc', version: 4, refusal: 0 });
    expect(parseFlagMessage('c stampede:{tpl:abc}:state 4 -4')).toBeUndefined();
    expect(parseFlagMessage('c stampede:{tpl:abc}:state 4')).toBeUndefined();
    expect(parseFlagMessage('s other-key 3')).toBeUndefined();
    expect(parseFlagMessage('p some-probe 1')).toBeUndefined();
    expect(parseFlagMessage('u sender-1 {tpl:abc} 2 alice b-0b')).toEqual({ kind: 'limited', templateId: 'abc', version: 2, userIds: ['alice', 'b-0b'] });
    expect(parseFlagMessage('u sender-1 {tpl:abc} 2')).toBeUndefined();
    expect(parseFlagMessage('u sender-1 {tpl:abc} x alice')).toBeUndefined();
  });

  it('is the channel both scripts publish on', () => {
    for (const script of ['claim-5.lua', 'change-settings-2.lua']) {
      expect(readFileSync(new URL(`./${script}`, import.meta.url), 'utf8')).toContain(`redis.call('PUBLISH', '${REFUSAL_FLAGS_CHANNEL}'`);
    }
  });
});
