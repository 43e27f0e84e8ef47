// Each mutating points operation, declared once: how its request is fingerprinted (idempotency.ts),
// which wallets it locks, and how it loads what it decides on and decides (ledger-rules.ts). The
// routes turn a request into an input; the group commit runs the call (group-commit.ts).
import { earnFingerprint, requestFingerprint, type IdempotentCall, type PointsOperation } from './idempotency.ts';
import { findTransaction, loadCancelState, type WalletRequest } from './ledger-repository.ts';
import {
  cancelTarget, decideCancel, decideEarn, decideTransfer, decideUse, walletsForEarn, walletsForTransfer, walletsForUse,
  type CancelInput, type EarnInput, type TransferInput, type UseInput,
} from './ledger-rules.ts';

export interface LedgerOperation<Input> {
  readonly operation: PointsOperation;
  readonly fingerprint: (input: Input) => Buffer;
  /** The wallets locked with the key claim; none for a call that runs alone (a cancel). */
  readonly wallets?: (input: Input) => WalletRequest;
  readonly decide: (partnerId: string, input: Input) => IdempotentCall['decide'];
}

export const EARN: LedgerOperation<EarnInput> = {
  operation: 'earn',
  fingerprint: earnFingerprint,
  wallets: walletsForEarn,
  decide: (partnerId, input) => async (_tx, wallets, now) => decideEarn(partnerId, input, wallets, now),
};

export const USE: LedgerOperation<UseInput> = {
  operation: 'use',
  fingerprint: (input) => requestFingerprint('use', [input.userId, input.amount, input.pointType, input.orderId ?? null, input.reason ?? null]),
  wallets: walletsForUse,
  decide: (partnerId, input) => async (_tx, wallets, now) => decideUse(partnerId, input, wallets, now),
};

export const CANCEL: LedgerOperation<CancelInput> = {
  operation: 'cancel',
  fingerprint: (input) => requestFingerprint('cancel', [input.transactionId, input.pointType ?? null, input.reason ?? null]),
  decide: (partnerId, input) => async (tx, _wallets, now) => {
    const target = cancelTarget(await findTransaction(tx, partnerId, input.transactionId), input);
    return decideCancel(partnerId, input, await loadCancelState(tx, target), now);
  },
};

export const TRANSFER: LedgerOperation<TransferInput> = {
  operation: 'transfer',
  fingerprint: (input) => requestFingerprint('transfer', [input.fromUserId, input.toUserId, input.amount, input.pointType, input.reason ?? null]),
  wallets: walletsForTransfer,
  decide: (partnerId, input) => async (_tx, wallets, now) => decideTransfer(partnerId, input, wallets, now),
};

/** The call the group commit runs for one request of `operation`. */
export function ledgerCall<Input>(operation: LedgerOperation<Input>, partnerId: string, key: string, input: Input): IdempotentCall {
  return {
    operation: operation.operation, partnerId, key, fingerprint: operation.fingerprint(input),
    wallets: operation.wallets?.(input), decide: operation.decide(partnerId, input),
  };
}
