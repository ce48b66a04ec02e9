/**
 * kad-dht's hooks for our namespaces: the stateless checks (validators) and the choice
 * among several values (selectors). The stateful half of validation (first come first
 * served, rising sequence numbers) is the store's write guard, see `RecordStore.guard`.
 */
import { defaultLogger } from '@libp2p/logger'
import { toString as bytesToString } from 'uint8arrays'
import { NAMESPACES, verifyRecordValue, selectRecord } from '@conf-chat/protocol'
import type { ValidateFn, SelectFn } from '@libp2p/kad-dht'
import type { ComponentLogger } from '@libp2p/interface'

export interface RecordValidatorsComponents {
  /** @default defaultLogger() */
  logger?: ComponentLogger
}

/** kad-dht validators: the stateless checks, the same on every path (put, get, correction). */
export function recordValidators (components: RecordValidatorsComponents = {}): Record<string, ValidateFn> {
  const log = (components.logger ?? defaultLogger()).forComponent('conf-chat:network:records:validators')
  const validators: Record<string, ValidateFn> = {}
  for (const ns of Object.keys(NAMESPACES)) {
    validators[ns] = (key, value) => {
      try {
        verifyRecordValue(bytesToString(key), value)
      } catch (err: any) {
        log('refused record for %s: %s', bytesToString(key).slice(0, 80), err.message)
        throw err
      }
    }
  }
  return validators
}

/** kad-dht selectors: the same rule as the validators (see `selectRecord`). */
export function recordSelectors (): Record<string, SelectFn> {
  const selectors: Record<string, SelectFn> = {}
  for (const ns of Object.keys(NAMESPACES)) {
    selectors[ns] = (key, values) => {
      const i = selectRecord(bytesToString(key), values)
      if (i < 0) throw new Error('no valid record')
      return i
    }
  }
  return selectors
}
