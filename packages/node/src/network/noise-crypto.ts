/**
 * Noise's crypto with X25519 done the fast way in Node.
 *
 * @chainsafe/libp2p-noise's default crypto hands every X25519 key to OpenSSL as DER
 * (PKCS#8 for the private key, SPKI for the public one), built anew for each
 * Diffie-Hellman: in Node 20 that import costs 0.47 ms per DH, and a new key pair 0.14 ms.
 * A handshake does three DHs and makes one key pair on each side: about 1.5 ms of CPU
 * each. At 200 peers (`npm run bench:scale`) the handshakes of the dials lookups make
 * were the largest part of a peer process's CPU while puts ran, and `createPrivateKey`
 * its largest self time. The DHs and key pairs go through libsodium instead (the
 * protocol package's crypto.ts, on raw keys: 35 µs a DH); everything else
 * (ChaCha20-Poly1305, SHA-256) is noise's own, unchanged.
 */
import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import { x25519PublicOf, x25519Shared } from '@conf-chat/protocol'

/** A key as noise passes it: an array, or a list of chunks. */
type KeyBytes = Parameters<ICryptoInterface['generateX25519SharedKey']>[0]

const X25519_KEY_BYTES = 32

const bytesOf = (key: KeyBytes): Uint8Array => key instanceof Uint8Array ? key : key.subarray()

function keyPairFrom (secret: Uint8Array): { publicKey: Uint8Array, privateKey: Uint8Array } {
  return { publicKey: x25519PublicOf(secret), privateKey: secret }
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
    return x25519Shared(bytesOf(privateKey), bytesOf(publicKey))
  }
}
