// Package callbackreceiver verifies and decrypts callbacks from Callback Profiles, with
// the Go standard library only.
//
//	body, _ := io.ReadAll(r.Body)
//	err := callbackreceiver.Verify(body, r.Header, callbackreceiver.Keys{
//		Secrets: []string{"whsec_…"}, PublicKeys: []string{"whpk_…"},
//	}, time.Now())
//	status, err := callbackreceiver.DecryptValue("aes-256-gcm", key, payload.Status) // scope "values"
//	plain, err := callbackreceiver.DecryptBody("aes-256-gcm", key, envelope)         // scope "body"
//
// Verify the raw bytes you received, before parsing them and before decrypting.
package callbackreceiver

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Tolerance is how far webhook-timestamp may be from your clock.
const Tolerance = 5 * time.Minute

// ErrVerification is wrapped by every Verify failure; ErrDecryption by every decryption one.
var (
	ErrVerification = errors.New("callback not verified")
	ErrDecryption   = errors.New("callback value does not decrypt")
)

// Keys are what a receiver verifies with: whsec_ signing secrets (v1, HMAC-SHA256) and
// whpk_ public keys (v1a, ed25519). During a rotation, list the old and the new one.
type Keys struct {
	Secrets    []string
	PublicKeys []string
	Tolerance  time.Duration // zero means the default Tolerance
}

func verificationError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrVerification, fmt.Sprintf(format, args...))
}

func decode(text string) ([]byte, error) {
	// Standard Webhooks tools also accept unpadded base64.
	return base64.RawStdEncoding.DecodeString(strings.TrimRight(text, "="))
}

// Header is what Verify reads the webhook-* headers from; http.Header is one.
type Header interface {
	Get(key string) string
}

// Verify returns nil if one signature in webhook-signature verifies for body under keys
// and webhook-timestamp is within the tolerance of now. Unknown versions are skipped.
func Verify(body []byte, header Header, keys Keys, now time.Time) error {
	msgID, stamp, signatures := header.Get("webhook-id"), header.Get("webhook-timestamp"), header.Get("webhook-signature")
	if msgID == "" || stamp == "" || signatures == "" {
		return verificationError("missing webhook-id, webhook-timestamp or webhook-signature")
	}
	seconds, err := strconv.ParseInt(stamp, 10, 64)
	if err != nil || seconds < 0 || strings.HasPrefix(stamp, "+") {
		return verificationError("webhook-timestamp is not a number of seconds")
	}
	tolerance := keys.Tolerance
	if tolerance == 0 {
		tolerance = Tolerance
	}
	if skew := now.Sub(time.Unix(seconds, 0)); skew > tolerance || skew < -tolerance {
		return verificationError("webhook-timestamp is outside the tolerance")
	}
	signed := append([]byte(msgID+"."+stamp+"."), body...)

	hmacKeys := make([][]byte, 0, len(keys.Secrets))
	for _, secret := range keys.Secrets {
		key, err := decode(strings.TrimPrefix(secret, "whsec_"))
		if err != nil {
			return verificationError("a signing secret is not whsec_ + base64")
		}
		hmacKeys = append(hmacKeys, key)
	}
	edKeys := make([]ed25519.PublicKey, 0, len(keys.PublicKeys))
	for _, public := range keys.PublicKeys {
		key, err := decode(strings.TrimPrefix(public, "whpk_"))
		if err != nil || len(key) != ed25519.PublicKeySize {
			return verificationError("a public key is not whpk_ + base64 of 32 bytes")
		}
		edKeys = append(edKeys, ed25519.PublicKey(key))
	}

	for _, entry := range strings.Split(signatures, " ") {
		version, value, found := strings.Cut(entry, ",")
		if !found {
			continue
		}
		signature, err := decode(value)
		if err != nil {
			continue
		}
		switch version {
		case "v1":
			for _, key := range hmacKeys {
				mac := hmac.New(sha256.New, key)
				mac.Write(signed)
				if hmac.Equal(mac.Sum(nil), signature) {
					return nil
				}
			}
		case "v1a":
			for _, key := range edKeys {
				if ed25519.Verify(key, signed, signature) {
					return nil
				}
			}
		}
	}
	return verificationError("no signature verifies")
}

// Envelope is the JSON body of scope "body".
type Envelope struct {
	Encrypted string `json:"encrypted"` // base64(ciphertext ‖ tag)
	IV        string `json:"iv"`        // base64(iv)
	Alg       string `json:"alg"`
}

func decryptionError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrDecryption, fmt.Sprintf(format, args...))
}

// mode checks algorithm ("aes-<bits>-gcm" or "aes-<bits>-cfb") against the key size.
func mode(algorithm string, key []byte) (string, error) {
	sizes := map[string]int{"128": 16, "192": 24, "256": 32}
	parts := strings.Split(algorithm, "-")
	if len(parts) != 3 || parts[0] != "aes" || (parts[2] != "gcm" && parts[2] != "cfb") || sizes[parts[1]] == 0 {
		return "", decryptionError("unknown algorithm %q", algorithm)
	}
	if len(key) != sizes[parts[1]] {
		return "", decryptionError("%s needs a %s-bit key", algorithm, parts[1])
	}
	return parts[2], nil
}

func decrypt(algorithm string, key, iv, data []byte) ([]byte, error) {
	m, err := mode(algorithm, key)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, decryptionError("%v", err)
	}
	if m == "gcm" {
		// 12-byte IV; data is ciphertext ‖ 16-byte tag, checked before anything is returned.
		if len(iv) != 12 || len(data) < 16 {
			return nil, decryptionError("too short")
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, decryptionError("%v", err)
		}
		plain, err := aead.Open(nil, iv, data, nil)
		if err != nil {
			return nil, decryptionError("does not authenticate under this key")
		}
		return plain, nil
	}
	// CFB (128-bit segments), 16-byte IV, no tag: it cannot tell a wrong key or an altered
	// value. The signature is what proves the callback is ours.
	if len(iv) != aes.BlockSize {
		return nil, decryptionError("too short")
	}
	plain := make([]byte, len(data))
	//lint:ignore SA1019 the sender's format is CFB; Go keeps NewCFBDecrypter for compatibility.
	cipher.NewCFBDecrypter(block, iv).XORKeyStream(plain, data) //nolint:staticcheck
	return plain, nil
}

// DecryptValue decrypts one value of scope "values": token is base64(iv ‖ ciphertext ‖ tag).
func DecryptValue(algorithm string, key []byte, token string) ([]byte, error) {
	raw, err := base64.StdEncoding.DecodeString(token)
	if err != nil {
		return nil, decryptionError("not base64")
	}
	m, err := mode(algorithm, key)
	if err != nil {
		return nil, err
	}
	ivBytes := 16
	if m == "gcm" {
		ivBytes = 12
	}
	if len(raw) < ivBytes {
		return nil, decryptionError("too short")
	}
	return decrypt(algorithm, key, raw[:ivBytes], raw[ivBytes:])
}

// DecryptBody decrypts a body of scope "body". algorithm is the one you configured; an
// envelope naming another is refused (its alg is not authenticated, so it never chooses).
func DecryptBody(algorithm string, key []byte, envelope Envelope) ([]byte, error) {
	if envelope.Alg != algorithm {
		return nil, decryptionError("body encrypted with %q, expected %q", envelope.Alg, algorithm)
	}
	iv, err := base64.StdEncoding.DecodeString(envelope.IV)
	if err != nil {
		return nil, decryptionError("not base64")
	}
	data, err := base64.StdEncoding.DecodeString(envelope.Encrypted)
	if err != nil {
		return nil, decryptionError("not base64")
	}
	return decrypt(algorithm, key, iv, data)
}
