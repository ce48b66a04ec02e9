import { describe, it, expect } from 'vitest'
import * as cborg from 'cborg'
import {
  createSignedRecord, encodeSignedRecord, decodeSignedRecord, generateAccountKeys, signerKeyId,
  keyIdOf, MAX_RECORD_BYTES, peekCbor
} from '../src/index.js'

const keys = generateAccountKeys()
const other = generateAccountKeys()

function envelope (fields: Record<string, unknown>): Uint8Array {
  const r = createSignedRecord('/cc-user/alice', 3, { hello: 'world' }, keys)
  return cborg.encode({ v: 1, key: r.key, seq: r.seq, pub: r.pub, body: r.body, sig: r.sig, ...fields })
}

describe('signed record codec', () => {
  it('round-trips a record and names its signer', () => {
    const r = createSignedRecord('/cc-user/alice', 3, { hello: 'world' }, keys)
    const back = decodeSignedRecord(encodeSignedRecord(r), '/cc-user/alice')
    expect(back).toEqual(r)
    expect(signerKeyId(back)).toBe(keyIdOf(keys.signPublic))
    expect(cborg.decode(back.body)).toEqual({ hello: 'world' })
  })

  it('refuses a record for another key than the one asked for', () => {
    const value = encodeSignedRecord(createSignedRecord('/cc-user/alice', 1, {}, keys))
    expect(() => decodeSignedRecord(value, '/cc-user/bob')).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
  })

  it.each([
    ['another public key', { pub: other.signPublic }],
    ['a flipped signature bit', { sig: (() => { const s = createSignedRecord('/cc-user/alice', 3, { hello: 'world' }, keys).sig.slice(); s[0]! ^= 1; return s })() }],
    ['a changed sequence number', { seq: 4 }],
    ['a changed key', { key: '/cc-user/alicf' }],
    ['a changed body', { body: cborg.encode({ hello: 'World' }) }]
  ])('refuses a bad signature: %s', (_name, fields) => {
    expect(() => decodeSignedRecord(envelope(fields))).toThrow(/bad signature/)
  })

  it.each([
    ['random bytes', new Uint8Array([0xff, 0x00, 0x13, 0x37])],
    ['an empty value', new Uint8Array(0)],
    ['a CBOR string', cborg.encode('hello')],
    ['an unknown version', envelope({ v: 2 })],
    ['an extra field', envelope({ extra: 1 })],
    ['a missing signature', envelope({ sig: undefined })],
    ['a short public key', envelope({ pub: new Uint8Array(31) })],
    ['a negative sequence number', envelope({ seq: -1 })],
    ['a fractional sequence number', envelope({ seq: 1.5 })],
    ['trailing bytes', new Uint8Array([...envelope({}), 0x00])],
    ['deeply nested arrays', new Uint8Array([...new Array(100_000).fill(0x81), 0x00])]
  ])('refuses a malformed value: %s', (_name, value) => {
    expect(() => decodeSignedRecord(value)).toThrow(expect.objectContaining({ name: 'InvalidRecordError' }))
  })

  it('refuses a validly signed record in a non-canonical encoding', () => {
    const r = createSignedRecord('/cc-user/alice', 3, {}, keys)
    const canonical = encodeSignedRecord(r)
    // the same fields with seq as a two-byte integer (0x18 0x03): the signature still verifies
    const seqField = [0x63, 0x73, 0x65, 0x71, 0x03]
    const at = canonical.findIndex((_, i) => seqField.every((b, j) => canonical[i + j] === b))
    expect(at).toBeGreaterThan(0)
    const nonMinimal = new Uint8Array([...canonical.subarray(0, at + 4), 0x18, 0x03, ...canonical.subarray(at + 5)])
    expect(() => decodeSignedRecord(nonMinimal)).toThrow(/canonical/)
    expect(() => decodeSignedRecord(canonical)).not.toThrow()
  })

  it('refuses an oversized record before decoding it', () => {
    const big = encodeSignedRecord(createSignedRecord('/cc-user/alice', 1, { blob: new Uint8Array(MAX_RECORD_BYTES) }, keys))
    expect(big.length).toBeGreaterThan(MAX_RECORD_BYTES)
    expect(() => decodeSignedRecord(big)).toThrow(/exceeds/)
  })
})

describe('peekCbor', () => {
  it('decodes CBOR, answers undefined for anything else without throwing, and decodes one byte array once', () => {
    const data = cborg.encode({ v: 2, writer: new Uint8Array(32) })
    const first = peekCbor(data)
    expect(first).toEqual({ v: 2, writer: new Uint8Array(32) })
    // the same array: the same answer, not decoded again
    expect(peekCbor(data)).toBe(first)
    // equal bytes in another array: decoded on their own
    expect(peekCbor(data.slice())).not.toBe(first)
    expect(peekCbor(new Uint8Array([0xff, 0x00, 0x01]))).toBeUndefined()
    expect(peekCbor(new Uint8Array(0))).toBeUndefined()
  })
})
