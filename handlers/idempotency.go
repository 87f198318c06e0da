package handlers

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/fault"
)

// Headers of idempotent requests.
const (
	IdempotencyKeyHeader      = "Idempotency-Key"
	IdempotentReplayedHeader  = "Idempotent-Replayed"
	maxIdempotencyKeyLength   = 255
	idempotencyKeyDescription = "1 to 255 printable ASCII characters, bare or as a quoted structured-field string"
)

// Errors of the Idempotency-Key header.
var (
	errIdempotencyKeyMissing = fault.Define("idempotency_key_missing", fault.Invalid, "Idempotency-Key header missing")
	errIdempotencyKeyInvalid = fault.Define("idempotency_key_invalid", fault.Invalid, "Idempotency-Key header invalid")
)

// idempotencyKey reads the Idempotency-Key header every POST must carry. The
// value is a structured-field string ("abc") or, as many clients send it,
// the bare characters (abc).
func idempotencyKey(r *http.Request) (string, error) {
	values := r.Header.Values(IdempotencyKeyHeader)
	if len(values) == 0 {
		return "", errIdempotencyKeyMissing.New("Every POST needs an Idempotency-Key header: a unique value per request, such as a UUID, reused only to retry that request.")
	}
	invalid := errIdempotencyKeyInvalid.New("The Idempotency-Key header must be one value of " + idempotencyKeyDescription + ".")
	if len(values) > 1 {
		return "", invalid
	}
	key := strings.Trim(values[0], " \t")
	if strings.HasPrefix(key, `"`) {
		unquoted, ok := unquoteSFString(key)
		if !ok {
			return "", invalid
		}
		key = unquoted
	}
	if key == "" || len(key) > maxIdempotencyKeyLength {
		return "", invalid
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x20 || key[i] > 0x7e {
			return "", invalid
		}
	}
	return key, nil
}

// unquoteSFString decodes an RFC 8941 string: "..." where only \" and \\
// are escapes.
func unquoteSFString(s string) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	var b strings.Builder
	body := s[1 : len(s)-1]
	for i := 0; i < len(body); i++ {
		switch c := body[i]; c {
		case '\\':
			i++
			if i == len(body) || (body[i] != '"' && body[i] != '\\') {
				return "", false
			}
			b.WriteByte(body[i])
		case '"':
			return "", false
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

// fingerprint identifies what a request asks for: its method, its route
// template and its body in canonical form (members sorted, no insignificant
// whitespace), so a retry matches whatever the client's JSON encoder did.
func fingerprint(method, route string, body []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(method + " " + route + "\n"))
	h.Write(canonicalJSON(body))
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

// canonicalJSON re-encodes a JSON body with sorted members; a body that is
// not JSON is returned as is (it fails decoding before it could be stored).
func canonicalJSON(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return body
	}
	out, err := json.Marshal(v)
	if err != nil {
		return body
	}
	return out
}

// execute runs cmd through d with the request's metadata (including its
// idempotency key) and notes when the outcome is a replay.
func execute[T any](c *call, d actors.Dispatcher, cmd actors.Command[T]) (T, error) {
	v, replayed, err := actors.Exec(c.ctx, d, c.meta, cmd)
	if replayed {
		infoFrom(c.ctx).replayed = true
	}
	return v, err
}
