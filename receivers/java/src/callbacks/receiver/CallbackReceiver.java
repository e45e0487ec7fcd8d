package callbacks.receiver;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PublicKey;
import java.security.Signature;
import java.security.spec.X509EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.Mac;
import javax.crypto.spec.GCMParameterSpec;
import javax.crypto.spec.IvParameterSpec;
import javax.crypto.spec.SecretKeySpec;

/**
 * Verify and decrypt callbacks from Callback Profiles, with the JDK (17+) alone.
 *
 * <pre>{@code
 * CallbackReceiver.verify(body, request::getHeader, List.of("whsec_…"), List.of("whpk_…"),
 *     CallbackReceiver.TOLERANCE, Instant.now());
 * byte[] status = CallbackReceiver.decryptValue("aes-256-gcm", key, token);   // scope "values"
 * byte[] plain = CallbackReceiver.decryptBody("aes-256-gcm", key,             // scope "body"
 *     envelope.get("alg"), envelope.get("iv"), envelope.get("encrypted"));
 * }</pre>
 *
 * <p>Verify the raw bytes you received, before parsing them and before decrypting. The JDK
 * has no JSON parser: read the body envelope's three strings with the library you use.
 */
public final class CallbackReceiver {
  /** How far webhook-timestamp may be from your clock. */
  public static final Duration TOLERANCE = Duration.ofMinutes(5);

  /** The callback is not authentic, or too old or too new to accept. */
  public static final class VerificationException extends Exception {
    private static final long serialVersionUID = 1L;

    public VerificationException(String message) {
      super(message);
    }
  }

  /** The value or body does not decrypt under this key and algorithm. */
  public static final class DecryptionException extends Exception {
    private static final long serialVersionUID = 1L;

    public DecryptionException(String message) {
      super(message);
    }
  }

  // A raw 32-byte ed25519 key wrapped as X.509 SubjectPublicKeyInfo, the encoding the JDK's
  // KeyFactory reads: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) }.
  private static final byte[] ED25519_X509_PREFIX = {
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00
  };
  private static final Pattern ALGORITHM = Pattern.compile("aes-(128|192|256)-(gcm|cfb)");
  private static final Map<String, Integer> KEY_BYTES = Map.of("128", 16, "192", 24, "256", 32);

  private CallbackReceiver() {}

  private static byte[] base64(String text) {
    return Base64.getDecoder().decode(text); // IllegalArgumentException if not base64
  }

  private static PublicKey ed25519Key(String publicKey) throws VerificationException {
    try {
      byte[] raw = base64(publicKey.startsWith("whpk_") ? publicKey.substring(5) : publicKey);
      if (raw.length != 32) {
        throw new VerificationException("a whpk_ key is 32 bytes");
      }
      byte[] encoded = new byte[ED25519_X509_PREFIX.length + raw.length];
      System.arraycopy(ED25519_X509_PREFIX, 0, encoded, 0, ED25519_X509_PREFIX.length);
      System.arraycopy(raw, 0, encoded, ED25519_X509_PREFIX.length, raw.length);
      return KeyFactory.getInstance("Ed25519").generatePublic(new X509EncodedKeySpec(encoded));
    } catch (IllegalArgumentException | GeneralSecurityException e) {
      throw new VerificationException("a public key is not whpk_ + base64 of 32 bytes");
    }
  }

  /**
   * Returns normally only if one signature in webhook-signature verifies.
   *
   * @param header looks up a request header by name (case-insensitively, e.g. {@code
   *     request::getHeader}); null when absent
   * @param secrets whsec_ signing secrets (v1, HMAC-SHA256); old and new during a rotation
   * @param publicKeys whpk_ keys (v1a, ed25519); old and new during a rotation
   */
  public static void verify(
      byte[] body,
      Function<String, String> header,
      List<String> secrets,
      List<String> publicKeys,
      Duration tolerance,
      Instant now)
      throws VerificationException {
    String msgId = header.apply("webhook-id");
    String stamp = header.apply("webhook-timestamp");
    String signatures = header.apply("webhook-signature");
    if (msgId == null || stamp == null || signatures == null) {
      throw new VerificationException("missing webhook-id, webhook-timestamp or webhook-signature");
    }
    if (!stamp.matches("[0-9]{1,18}")) {
      throw new VerificationException("webhook-timestamp is not a number of seconds");
    }
    Duration skew = Duration.between(Instant.ofEpochSecond(Long.parseLong(stamp)), now).abs();
    if (skew.compareTo(tolerance) > 0) {
      throw new VerificationException("webhook-timestamp is outside the tolerance");
    }
    byte[] prefix = (msgId + "." + stamp + ".").getBytes(StandardCharsets.UTF_8);
    byte[] signed = new byte[prefix.length + body.length];
    System.arraycopy(prefix, 0, signed, 0, prefix.length);
    System.arraycopy(body, 0, signed, prefix.length, body.length);

    List<byte[]> hmacKeys = new ArrayList<>();
    for (String secret : secrets) {
      try {
        hmacKeys.add(base64(secret.startsWith("whsec_") ? secret.substring(6) : secret));
      } catch (IllegalArgumentException e) {
        throw new VerificationException("a signing secret is not whsec_ + base64");
      }
    }
    List<PublicKey> edKeys = new ArrayList<>();
    for (String publicKey : publicKeys) {
      edKeys.add(ed25519Key(publicKey));
    }

    for (String entry : signatures.split(" ")) {
      int comma = entry.indexOf(',');
      if (comma < 0) {
        continue;
      }
      String version = entry.substring(0, comma);
      byte[] signature;
      try {
        signature = base64(entry.substring(comma + 1));
      } catch (IllegalArgumentException e) {
        continue;
      }
      try {
        if (version.equals("v1")) {
          for (byte[] key : hmacKeys) {
            Mac mac = Mac.getInstance("HmacSHA256");
            mac.init(new SecretKeySpec(key, "HmacSHA256"));
            if (MessageDigest.isEqual(mac.doFinal(signed), signature)) {
              return;
            }
          }
        } else if (version.equals("v1a")) {
          for (PublicKey key : edKeys) {
            Signature verifier = Signature.getInstance("Ed25519");
            verifier.initVerify(key);
            verifier.update(signed);
            if (verifier.verify(signature)) {
              return;
            }
          }
        }
      } catch (GeneralSecurityException e) {
        continue; // a malformed signature value: try the next one
      }
    }
    throw new VerificationException("no signature verifies");
  }

  /** The mode ("gcm" or "cfb") of aes-&lt;bits&gt;-&lt;mode&gt;, after checking the key size. */
  private static String mode(String algorithm, byte[] key) throws DecryptionException {
    Matcher match = ALGORITHM.matcher(algorithm);
    if (!match.matches()) {
      throw new DecryptionException("unknown algorithm " + algorithm);
    }
    if (key.length != KEY_BYTES.get(match.group(1))) {
      throw new DecryptionException(algorithm + " needs a " + match.group(1) + "-bit key");
    }
    return match.group(2);
  }

  private static byte[] decrypt(String algorithm, byte[] key, byte[] iv, byte[] data)
      throws DecryptionException {
    SecretKeySpec aesKey = new SecretKeySpec(key, "AES");
    try {
      if (mode(algorithm, key).equals("gcm")) {
        // 12-byte IV; data is ciphertext || 16-byte tag, checked before anything is returned.
        if (iv.length != 12 || data.length < 16) {
          throw new DecryptionException("too short");
        }
        Cipher cipher = Cipher.getInstance("AES/GCM/NoPadding");
        cipher.init(Cipher.DECRYPT_MODE, aesKey, new GCMParameterSpec(128, iv));
        return cipher.doFinal(data);
      }
      // CFB (128-bit segments), 16-byte IV, no tag: it cannot tell a wrong key or an altered
      // value. The signature is what proves the callback is ours.
      if (iv.length != 16) {
        throw new DecryptionException("too short");
      }
      Cipher cipher = Cipher.getInstance("AES/CFB/NoPadding");
      cipher.init(Cipher.DECRYPT_MODE, aesKey, new IvParameterSpec(iv));
      return cipher.doFinal(data);
    } catch (AEADBadTagException e) {
      throw new DecryptionException("does not authenticate under this key");
    } catch (GeneralSecurityException e) {
      throw new DecryptionException(e.getMessage());
    }
  }

  /** One value of scope "values": token is base64(iv || ciphertext || tag). */
  public static byte[] decryptValue(String algorithm, byte[] key, String token)
      throws DecryptionException {
    byte[] raw;
    try {
      raw = base64(token);
    } catch (IllegalArgumentException e) {
      throw new DecryptionException("not base64");
    }
    int ivBytes = mode(algorithm, key).equals("gcm") ? 12 : 16;
    if (raw.length < ivBytes) {
      throw new DecryptionException("too short");
    }
    byte[] iv = Arrays.copyOfRange(raw, 0, ivBytes);
    byte[] data = Arrays.copyOfRange(raw, ivBytes, raw.length);
    return decrypt(algorithm, key, iv, data);
  }

  /**
   * A body of scope "body": the envelope's {@code alg}, {@code iv} and {@code encrypted}.
   * {@code algorithm} is the one you configured; an envelope naming another is refused (its
   * alg is not authenticated, so it never chooses).
   */
  public static byte[] decryptBody(
      String algorithm, byte[] key, String envelopeAlg, String iv, String encrypted)
      throws DecryptionException {
    if (!algorithm.equals(envelopeAlg)) {
      throw new DecryptionException(
          "body encrypted with " + envelopeAlg + ", expected " + algorithm);
    }
    if (iv == null || encrypted == null) {
      throw new DecryptionException("not an encrypted body");
    }
    try {
      return decrypt(algorithm, key, base64(iv), base64(encrypted));
    } catch (IllegalArgumentException e) {
      throw new DecryptionException("not base64");
    }
  }
}
