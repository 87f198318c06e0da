package handlers

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/aura-clinic/aura/actors/fault"
)

// Errors of request bodies.
var (
	errMalformedJSON    = fault.Define("malformed_json", fault.Invalid, "Malformed JSON")
	errBodyTooLarge     = fault.Define("body_too_large", fault.TooLarge, "Request body too large")
	errUnsupportedMedia = fault.Define("unsupported_media_type", fault.UnsupportedMedia, "Unsupported media type")
)

// readBody reads a request's body: JSON media type only, at most
// MaxBodyBytes. An empty body reads as {}, so a body with only optional
// members may be left out.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > s.cfg.MaxBodyBytes {
		return nil, s.tooLarge()
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, s.cfg.MaxBodyBytes))
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return nil, s.tooLarge()
	}
	if err != nil {
		return nil, errMalformedJSON.Wrap(err, "The request body could not be read.")
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return []byte("{}"), nil
	}
	if err := checkJSONMediaType(r.Header.Get("Content-Type")); err != nil {
		return nil, err
	}
	return raw, nil
}

// decode parses the request's body into dst, strictly: a single JSON
// object, no unknown members, nothing after it.
func (c *call) decode(dst any) error { return decodeStrict(c.body, dst, "") }

// decodeStrict parses raw as decode does; at is the JSON Pointer of raw in
// the body ("" for the body itself), prefixed to the pointers of errors.
func decodeStrict(raw []byte, dst any, at string) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, at)
	}
	if dec.More() {
		return errMalformedJSON.New("The body must hold a single JSON object and nothing after it.")
	}
	if _, err := dec.Token(); err != io.EOF {
		return errMalformedJSON.New("The body must hold a single JSON object and nothing after it.")
	}
	return nil
}

func (s *Server) tooLarge() error {
	return errBodyTooLarge.Errorf("The request body must be at most %d bytes.", s.cfg.MaxBodyBytes)
}

// checkJSONMediaType accepts application/json and any application/*+json
// (such as application/merge-patch+json), with or without parameters.
func checkJSONMediaType(header string) error {
	mt, _, err := mime.ParseMediaType(header)
	if err == nil && (mt == "application/json" || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))) {
		return nil
	}
	return errUnsupportedMedia.New("Send the body as JSON with Content-Type: application/json.")
}

// decodeError explains a JSON decoding failure: syntax is a 400; a member of
// the wrong type or an unknown member is a 422 pointing at the member.
func decodeError(err error, at string) error {
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	var f fault.Fields
	switch {
	case errors.As(err, &syntaxErr):
		return errMalformedJSON.Errorf("The body is not valid JSON (at byte %d).", syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errMalformedJSON.New("The body is not valid JSON (it ends too early).")
	case errors.As(err, &typeErr) && typeErr.Field == "" && at == "":
		return errMalformedJSON.New("The body must be a JSON object.")
	case errors.As(err, &typeErr) && typeErr.Field == "":
		f.Add(at, "invalid_type", "must be of type object")
	case errors.As(err, &typeErr):
		f.Add(at+pointer(typeErr.Field), "invalid_type", fmt.Sprintf("must be of type %s", jsonType(typeErr.Type.Kind())))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// The member's name is Go-quoted (%q) and is one name, not a path:
		// unquote it and escape it whole, dots included.
		name := strings.TrimPrefix(err.Error(), "json: unknown field ")
		if unquoted, err := strconv.Unquote(name); err == nil {
			name = unquoted
		}
		f.Add(at+"/"+escapePointer(name), "unknown_field", "is not a member of this resource")
	default:
		return errMalformedJSON.New("The body could not be decoded as JSON.")
	}
	return f.Err()
}

// pointer turns encoding/json's dotted field path into a JSON Pointer.
func pointer(field string) string {
	parts := strings.Split(field, ".")
	for i, p := range parts {
		parts[i] = escapePointer(p)
	}
	return "/" + strings.Join(parts, "/")
}

// escapePointer escapes one reference token of a JSON Pointer (RFC 6901).
func escapePointer(token string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(token)
}

// jsonType names a Go kind as JSON Schema would.
func jsonType(kind reflect.Kind) string {
	switch kind {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Float32, reflect.Float64:
		return "number"
	default:
		return "integer"
	}
}
