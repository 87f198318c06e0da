package platform

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
)

// KeyPrefix starts every Aura API key, so leaked keys are easy to scan for.
const KeyPrefix = "aura_"

// secretBytes is the entropy of a key: 256 bits.
const secretBytes = 32

// displayPrefixLen is how much of a key is kept in clear to tell keys apart.
const displayPrefixLen = len(KeyPrefix) + 8

// ErrAPIKeyNotFound is returned for a key that does not exist or is not the caller's.
var ErrAPIKeyNotFound = fault.Define("api_key_not_found", fault.NotFound, "API key not found")

// APIKey is a credential of one user. Only SecretHash is stored; the plain key
// exists once, when the key is created.
type APIKey struct {
	ID         uuid.UUID  `json:"id"`
	UserID     uuid.UUID  `json:"-"`
	Name       string     `json:"name"`
	Prefix     string     `json:"prefix"`
	SecretHash []byte     `json:"-"`
	CreatedAt  time.Time  `json:"created_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
}

// NewAPIKey makes a key for the user and returns it with its plain secret,
// which the caller shows once and never stores.
func NewAPIKey(userID uuid.UUID, name string) (APIKey, string, error) {
	name = strings.TrimSpace(name)
	var errs fault.Fields
	errs.Length("/name", name, 0, 100)
	if err := errs.Err(); err != nil {
		return APIKey{}, "", err
	}
	raw := make([]byte, secretBytes)
	if _, err := rand.Read(raw); err != nil {
		return APIKey{}, "", fault.ErrInternal.Wrap(err, "could not generate a key")
	}
	secret := KeyPrefix + base64.RawURLEncoding.EncodeToString(raw)
	return APIKey{
		ID:         uuid.Must(uuid.NewV7()),
		UserID:     userID,
		Name:       name,
		Prefix:     secret[:displayPrefixLen],
		SecretHash: HashSecret(secret),
	}, secret, nil
}

// HashSecret is how keys are stored and looked up. A key carries 256 random
// bits, so a fast hash is enough: there is nothing to brute-force.
func HashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}
