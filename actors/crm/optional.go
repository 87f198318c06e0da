package crm

import (
	"bytes"
	"encoding/json"
)

// Optional is a JSON member that may be absent, null or a value, as a JSON
// merge patch (RFC 7396) needs: absent leaves a field as it is, null clears it.
type Optional[T any] struct {
	Set   bool // the member was present
	Null  bool // the member was null
	Value T
}

// Some returns an Optional holding v.
func Some[T any](v T) Optional[T] { return Optional[T]{Set: true, Value: v} }

// UnmarshalJSON implements json.Unmarshaler. Type errors keep the member's
// path, so the edge can point at the offending member.
func (o *Optional[T]) UnmarshalJSON(b []byte) error {
	o.Set = true
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		o.Null = true
		return nil
	}
	return json.Unmarshal(b, &o.Value)
}

// Ptr returns nil when o is absent or null, else a pointer to its value.
func (o Optional[T]) Ptr() *T {
	if !o.Set || o.Null {
		return nil
	}
	v := o.Value
	return &v
}
