package platform

import (
	"net/mail"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
)

// User is a person who can sign in with an API key and be a member of clinics.
type User struct {
	ID        uuid.UUID `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// NewUser validates email and name and returns a new user with a fresh id.
// The email is stored lower-cased. An empty name defaults to the email's
// local part, for users invited by email only.
func NewUser(email, name string) (User, error) {
	var errs fault.Fields
	addr, err := NormalizeEmail(email)
	if err != nil {
		errs.Add("/email", "invalid_email", err.Error())
	}
	name = strings.TrimSpace(name)
	if name == "" && addr != "" {
		name, _, _ = strings.Cut(addr, "@")
	}
	if name != "" || addr != "" { // with no name and a bad email, the email error says it all
		errs.Length("/name", name, 1, 200)
	}
	if err := errs.Err(); err != nil {
		return User{}, err
	}
	return User{ID: uuid.Must(uuid.NewV7()), Email: addr, Name: name}, nil
}

// NormalizeEmail checks that s is a plain email address (no display name) and
// returns it lower-cased.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errString("is required")
	}
	// net/mail accepts Unicode spaces such as U+3000 inside an address; the
	// database's users_email_shape check does not, so reject them here.
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || len(s) > 254 || strings.ContainsFunc(s, unicode.IsSpace) {
		return "", errString("must be an email address such as ana@example.com")
	}
	return strings.ToLower(s), nil
}

// errString is a validation message that is itself an error.
type errString string

func (e errString) Error() string { return string(e) }
