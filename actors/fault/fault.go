// Package fault is Aura's one application error type.
//
// Every error a client may see is a *Error carrying a Code. A Code is declared
// once, by the package that owns the rule, with a stable snake_case name, a
// Kind and a title:
//
//	var ErrMemberExists = fault.Define("member_exists", fault.Conflict, "Already a member")
//
// Kinds are the only thing the HTTP edge maps to statuses, in one place
// (handlers/problem); nothing below the edge knows about HTTP. Any error that
// is not a *Error is an internal error: its text never reaches a client.
package fault

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Kind is the category of an error; the edge maps each kind to one status.
type Kind uint8

// The kinds of error Aura reports.
const (
	Internal         Kind = iota // a bug or an outage; details stay in the logs
	Invalid                      // the request is malformed (syntax, unknown field, bad header)
	Unauthenticated              // no valid credentials
	Forbidden                    // authenticated, but the role lacks the right
	NotFound                     // no such resource, or not visible to the caller
	MethodNotAllowed             // the resource exists but not with this method
	Conflict                     // the request conflicts with the current state
	TooLarge                     // the body exceeds the size limit
	UnsupportedMedia             // the body has the wrong content type
	Unprocessable                // well-formed, but breaks a validation or domain rule
	Unavailable                  // temporarily unable to answer (timeout, shutdown, dependency down)
	RateLimited                  // over a rate limit; retry later
)

// Code is a stable, machine-readable error code. Declare each with Define.
type Code struct {
	name  string
	kind  Kind
	title string
}

// Define declares an error code. name is stable snake_case; title is a short
// human summary, the same for every occurrence of the code.
func Define(name string, kind Kind, title string) Code {
	return Code{name: name, kind: kind, title: title}
}

// Name is the code's stable snake_case identifier.
func (c Code) Name() string { return c.name }

// Kind is the code's category.
func (c Code) Kind() Kind { return c.kind }

// Title is the code's human summary.
func (c Code) Title() string { return c.title }

// New returns an error with this code and a detail for this occurrence.
func (c Code) New(detail string) *Error { return &Error{Code: c, Detail: detail} }

// Errorf returns an error with this code and a formatted detail.
func (c Code) Errorf(format string, args ...any) *Error {
	return &Error{Code: c, Detail: fmt.Sprintf(format, args...)}
}

// Wrap returns an error with this code whose cause is err. The cause is kept
// for logs and errors.Is; clients see only detail.
func (c Code) Wrap(err error, detail string) *Error {
	return &Error{Code: c, Detail: detail, Cause: err}
}

// Codes shared by every part of Aura.
var (
	ErrInternal   = Define("internal_error", Internal, "Internal server error")
	ErrValidation = Define("validation_failed", Unprocessable, "Validation failed")
	ErrForbidden  = Define("forbidden", Forbidden, "Forbidden")
	ErrTimeout    = Define("request_timeout", Unavailable, "Request timed out")
	ErrShutdown   = Define("shutting_down", Unavailable, "Server is shutting down")
)

// FieldError is one invalid member of a request body.
type FieldError struct {
	// Pointer is a JSON Pointer (RFC 6901) to the member, e.g. "/first_name".
	Pointer string `json:"pointer"`
	// Detail says what is wrong, for humans.
	Detail string `json:"detail"`
	// Code is a stable snake_case reason, e.g. "required" or "too_long".
	Code string `json:"code"`
}

// Error is an application error with a code, a detail for this occurrence,
// optional per-field errors and an optional cause.
type Error struct {
	Code   Code
	Detail string
	Fields []FieldError
	Cause  error
}

// Error implements error.
func (e *Error) Error() string {
	msg := e.Code.name
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, ErrMemberExists.New("")) style checks work by code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// From returns err as an *Error. Errors that are not application errors
// become internal errors whose cause is err.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return ErrInternal.Wrap(err, "The server could not complete the request.")
}

// HasCode reports whether err is an application error with code c.
func HasCode(err error, c Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == c
}

// Fields collects field errors; its Err is nil when none were added.
type Fields []FieldError

// Add records that the member at pointer is invalid.
func (f *Fields) Add(pointer, code, detail string) {
	*f = append(*f, FieldError{Pointer: pointer, Code: code, Detail: detail})
}

// Err returns a validation error listing the fields, or nil if there are none.
func (f Fields) Err() error {
	if len(f) == 0 {
		return nil
	}
	return &Error{Code: ErrValidation, Detail: "The request body has invalid fields; see errors.", Fields: f}
}

// Length records a field error unless s is between min and max characters
// long (an empty s with min > 0 is reported as "required") and is text a
// database column can store: valid UTF-8 without NUL characters.
func (f *Fields) Length(pointer, s string, min, max int) {
	n := utf8.RuneCountInString(s)
	switch {
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		f.Add(pointer, "invalid_characters", "must be valid text without NUL characters")
	case n == 0 && min > 0:
		f.Add(pointer, "required", "is required")
	case n < min:
		f.Add(pointer, "too_short", fmt.Sprintf("must be at least %d characters", min))
	case n > max:
		f.Add(pointer, "too_long", fmt.Sprintf("must be at most %d characters", max))
	}
}

// kindNames are the stable names of the kinds, as stored with idempotent
// outcomes; append only.
var kindNames = [...]string{
	Internal: "internal", Invalid: "invalid", Unauthenticated: "unauthenticated",
	Forbidden: "forbidden", NotFound: "not_found", MethodNotAllowed: "method_not_allowed",
	Conflict: "conflict", TooLarge: "too_large", UnsupportedMedia: "unsupported_media",
	Unprocessable: "unprocessable", Unavailable: "unavailable", RateLimited: "rate_limited",
}

// String returns the kind's stable name.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// ParseKind returns the kind named s (see String).
func ParseKind(s string) (Kind, bool) {
	for k, name := range kindNames {
		if name == s {
			return Kind(k), true
		}
	}
	return Internal, false
}
