// Package commands holds Aura's writes, one small file each. A command is a
// plain value built by the edge from a validated request; its Execute applies
// the domain's rules and writes through the store inside the transaction the
// actors package gives it.
package commands

import "time"

// now is the time a command records, at the database's microsecond precision
// so that what a write returns equals what a later read returns.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }
