// Verify and decrypt callbacks from Callback Profiles, in Node.js (18+), with node:crypto only.
//
//   const { verify, decryptValue, decryptBody } = require("./callback-receiver");
//   verify(rawBody, req.headers, { secrets: ["whsec_…"], publicKeys: ["whpk_…"] });
//   const status = decryptValue("aes-256-gcm", key, payload.status).toString("utf8");
//   const plain = decryptBody("aes-256-gcm", key, JSON.parse(rawBody));
//
// Verify the raw bytes you received (a Buffer), before parsing and before decrypting.
"use strict";

const crypto = require("node:crypto");

const TOLERANCE_S = 5 * 60; // how far webhook-timestamp may be from your clock

class VerificationError extends Error {}
class DecryptionError extends Error {}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function fromBase64(text, ErrorType) {
  // Buffer.from(…, "base64") skips bad characters silently; refuse them instead.
  if (typeof text !== "string" || !BASE64.test(text)) throw new ErrorType("not base64");
  return Buffer.from(text, "base64");
}

function header(headers, name) {
  // Node lower-cases incoming header names; a plain object from elsewhere may not.
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() === name) return Array.isArray(value) ? value.join(" ") : String(value);
  }
  throw new VerificationError(`missing ${name} header`);
}

function ed25519Key(publicKey) {
  const raw = fromBase64(publicKey.replace(/^whpk_/, ""), VerificationError);
  if (raw.length !== 32) throw new VerificationError("a whpk_ key is 32 bytes");
  return crypto.createPublicKey({
    key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") },
    format: "jwk",
  });
}

/**
 * Throw VerificationError unless one signature in webhook-signature verifies.
 * secrets: whsec_ signing secrets (v1, HMAC-SHA256); publicKeys: whpk_ keys (v1a, ed25519);
 * pass the old and the new one during a rotation. Unknown versions are skipped.
 */
function verify(
  body,
  headers,
  { secrets = [], publicKeys = [], toleranceS = TOLERANCE_S, now } = {},
) {
  const msgId = header(headers, "webhook-id");
  const stamp = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!/^[0-9]+$/.test(stamp))
    throw new VerificationError("webhook-timestamp is not a number of seconds");
  const current = now ?? Date.now() / 1000;
  if (Math.abs(current - Number(stamp)) > toleranceS) {
    throw new VerificationError("webhook-timestamp is outside the tolerance");
  }
  const signed = Buffer.concat([Buffer.from(`${msgId}.${stamp}.`), Buffer.from(body)]);
  const hmacKeys = secrets.map((s) => fromBase64(s.replace(/^whsec_/, ""), VerificationError));
  const edKeys = publicKeys.map(ed25519Key);
  for (const entry of signatures.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma < 0) continue;
    const version = entry.slice(0, comma);
    let signature;
    try {
      signature = fromBase64(entry.slice(comma + 1), VerificationError);
    } catch {
      continue;
    }
    if (version === "v1") {
      for (const key of hmacKeys) {
        const expected = crypto.createHmac("sha256", key).update(signed).digest();
        if (expected.length === signature.length && crypto.timingSafeEqual(expected, signature))
          return;
      }
    } else if (version === "v1a") {
      for (const key of edKeys) {
        if (signature.length === 64 && crypto.verify(null, signed, key, signature)) return;
      }
    }
  }
  throw new VerificationError("no signature verifies");
}

const KEY_BYTES = { 128: 16, 192: 24, 256: 32 };

function mode(algorithm, key) {
  const match = /^aes-(128|192|256)-(gcm|cfb)$/.exec(algorithm);
  if (!match) throw new DecryptionError(`unknown algorithm ${algorithm}`);
  if (key.length !== KEY_BYTES[match[1]])
    throw new DecryptionError(`${algorithm} needs a ${match[1]}-bit key`);
  return match[2];
}

function decrypt(algorithm, key, iv, data) {
  if (mode(algorithm, key) === "gcm") {
    // 12-byte IV; data is ciphertext ‖ 16-byte tag, checked before anything is returned.
    if (iv.length !== 12 || data.length < 16) throw new DecryptionError("too short");
    const decipher = crypto.createDecipheriv(algorithm, key, iv);
    decipher.setAuthTag(data.subarray(data.length - 16));
    try {
      return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
    } catch {
      throw new DecryptionError("does not authenticate under this key");
    }
  }
  // CFB (128-bit segments), 16-byte IV, no tag: it cannot tell a wrong key or an altered
  // value. The signature is what proves the callback is ours.
  if (iv.length !== 16) throw new DecryptionError("too short");
  const decipher = crypto.createDecipheriv(algorithm, key, iv);
  return Buffer.concat([decipher.update(data), decipher.final()]);
}

/** One value of scope "values": token is base64(iv ‖ ciphertext ‖ tag). */
function decryptValue(algorithm, key, token) {
  const raw = fromBase64(token, DecryptionError);
  const ivBytes = mode(algorithm, key) === "gcm" ? 12 : 16;
  return decrypt(algorithm, key, raw.subarray(0, ivBytes), raw.subarray(ivBytes));
}

/**
 * The body of scope "body": the parsed JSON {encrypted, iv, alg}. algorithm is the one you
 * configured; an envelope naming another is refused (alg is not authenticated).
 */
function decryptBody(algorithm, key, envelope) {
  if (typeof envelope?.encrypted !== "string" || typeof envelope?.iv !== "string") {
    throw new DecryptionError("not an encrypted body");
  }
  if (envelope.alg !== algorithm) {
    throw new DecryptionError(`body encrypted with ${envelope.alg}, expected ${algorithm}`);
  }
  const iv = fromBase64(envelope.iv, DecryptionError);
  return decrypt(algorithm, key, iv, fromBase64(envelope.encrypted, DecryptionError));
}

module.exports = {
  verify,
  decryptValue,
  decryptBody,
  VerificationError,
  DecryptionError,
  TOLERANCE_S,
};
