/**
 * The credential the control plane hands a node that joins through a pool travels sealed: the device sends
 * a fresh X25519 public key with its request, the control plane answers with its own and the credential
 * encrypted (AES-256-GCM) under their shared secret. Only that device can read it, whatever the broker
 * lets other members of the pool subscribe to (Mosquitto's ACL cannot forbid a wildcard subscription).
 */
import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';

export interface SealingKey {
  /** To send: the public half, DER (SPKI) base64. */
  publicKey: string;
  privateKey: KeyObject;
}

export interface Sealed {
  public_key: string;
  iv: string;
  ciphertext: string;
  tag: string;
}

export function newSealingKey(): SealingKey {
  const { publicKey, privateKey } = generateKeyPairSync('x25519');
  return { publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64'), privateKey };
}

function sharedKey(privateKey: KeyObject, peerPublicKey: string, context: string): Buffer {
  const peer = createPublicKey({ key: Buffer.from(peerPublicKey, 'base64'), format: 'der', type: 'spki' });
  const secret = diffieHellman({ privateKey, publicKey: peer });
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), `otto-join:${context}`, 32));
}

/** Seals `plaintext` for the holder of `peerPublicKey`; `context` (the request id) binds it to one request. */
export function seal(plaintext: string, peerPublicKey: string, context: string): Sealed {
  const mine = newSealingKey();
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', sharedKey(mine.privateKey, peerPublicKey, context), iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { public_key: mine.publicKey, iv: iv.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') };
}

/** Opens what was sealed for `key`; throws if it was sealed for another key or tampered with. */
export function open(sealed: Sealed, key: SealingKey, context: string): string {
  const decipher = createDecipheriv('aes-256-gcm', sharedKey(key.privateKey, sealed.public_key, context), Buffer.from(sealed.iv, 'base64'));
  decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64')), decipher.final()]).toString('utf8');
}
