/**
 * Noise's crypto with X25519 done the fast way in Node.
 *
 * @chainsafe/libp2p-noise's default crypto hands every X25519 key to OpenSSL as DER
 * (PKCS#8 for the private key, SPKI for the public one), built anew for each
 * Diffie-Hellman: in Node 20 that import costs 0.47 ms per DH, where the same keys as
 * JWK cost 0.08 ms, and a new key pair 0.14 ms where 0.04 would do. A handshake does three
 * DHs and makes one key pair on each side: about 1.5 ms of CPU each, 0.3 with JWK. At 200
 * peers (`npm run bench:scale`) the handshakes of the dials lookups make were the largest
 * part of a peer process's CPU while puts ran, and `createPrivateKey` its largest self
 * time. Everything else (ChaCha20-Poly1305, SHA-256) is noise's own, unchanged.
 */
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes, type KeyObject } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'

/** A key as noise passes it: an array, or a list of chunks. */
type KeyBytes = Parameters<ICryptoInterface['generateX25519SharedKey']>[0]

const X25519_KEY_BYTES = 32

const bytesOf = (key: KeyBytes): Uint8Array => key instanceof Uint8Array ? key : key.subarray()
const b64u = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
/** OpenSSL derives the public half from `d`: the JWK's `x` is only a placeholder. */
const PLACEHOLDER_X = b64u(new Uint8Array(X25519_KEY_BYTES))

/** Key objects of our private keys, by array: the static key is the same array every
 * handshake, an ephemeral one serves two DHs (and goes with its array). */
const ownKeys = new WeakMap<Uint8Array, KeyObject>()

function privateKeyOf (raw: Uint8Array): KeyObject {
  return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64u(raw), x: PLACEHOLDER_X }, format: 'jwk' })
}

function publicKeyOf (raw: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64u(raw) }, format: 'jwk' })
}

function keyPairFrom (secret: Uint8Array): { publicKey: Uint8Array, privateKey: Uint8Array } {
  const key = privateKeyOf(secret)
  const x = createPublicKey(key).export({ format: 'jwk' }).x ?? ''
  return { publicKey: new Uint8Array(Buffer.from(x, 'base64url')), privateKey: secret }
}

export const fastNoiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  generateX25519KeyPair () {
    return keyPairFrom(new Uint8Array(randomBytes(X25519_KEY_BYTES)))
  },
  generateX25519KeyPairFromSeed (seed: Uint8Array) {
    return keyPairFrom(seed)
  },
  generateX25519SharedKey (privateKey: KeyBytes, publicKey: KeyBytes) {
    let own = privateKey instanceof Uint8Array ? ownKeys.get(privateKey) : undefined
    if (own == null) {
      own = privateKeyOf(bytesOf(privateKey))
      if (privateKey instanceof Uint8Array) ownKeys.set(privateKey, own)
    }
    return diffieHellman({ privateKey: own, publicKey: publicKeyOf(bytesOf(publicKey)) })
  }
}
