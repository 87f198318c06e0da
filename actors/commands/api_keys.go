package commands

import (
	"context"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/schema/store"
)

// NewKey is a freshly created API key with its secret, shown once.
type NewKey struct {
	platform.APIKey
	Key string `json:"key,omitempty"`
}

// Redacted implements actors.Redacter: the secret is never stored, so an
// idempotent replay of the creation shows the key without it.
func (k NewKey) Redacted() any {
	k.Key = ""
	return k
}

// CreateAPIKey gives the caller a new API key.
type CreateAPIKey struct {
	Name string `json:"name"`
}

// Execute implements actors.Command.
func (c CreateAPIKey) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (NewKey, error) {
	return createKey(ctx, q, m.UserID, c.Name)
}

func createKey(ctx context.Context, q *store.Queries, userID uuid.UUID, name string) (NewKey, error) {
	key, secret, err := platform.NewAPIKey(userID, name)
	if err != nil {
		return NewKey{}, err
	}
	if key, err = q.InsertAPIKey(ctx, key); err != nil {
		return NewKey{}, err
	}
	return NewKey{APIKey: key, Key: secret}, nil
}

// RevokeAPIKey revokes one of the caller's keys.
type RevokeAPIKey struct {
	KeyID uuid.UUID
}

// Execute implements actors.Command.
func (c RevokeAPIKey) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (struct{}, error) {
	return struct{}{}, q.RevokeAPIKey(ctx, m.UserID, c.KeyID)
}

// CreateUser creates a user, or finds the one with the same email, and gives
// them a new API key. It backs the `aura user create` command line.
type CreateUser struct {
	Email   string
	Name    string
	KeyName string
}

// UserWithKey is a user and a new key of theirs.
type UserWithKey struct {
	User    platform.User
	Created bool
	Key     NewKey
}

// Execute implements actors.Command.
func (c CreateUser) Execute(ctx context.Context, q *store.Queries, _ actors.Meta) (UserWithKey, error) {
	u, err := platform.NewUser(c.Email, c.Name)
	if err != nil {
		return UserWithKey{}, err
	}
	u, created, err := q.EnsureUser(ctx, u)
	if err != nil {
		return UserWithKey{}, err
	}
	key, err := createKey(ctx, q, u.ID, c.KeyName)
	if err != nil {
		return UserWithKey{}, err
	}
	return UserWithKey{User: u, Created: created, Key: key}, nil
}
