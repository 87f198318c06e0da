// Package eventschema checks events against their published JSON Schemas
// (docs/events, which docs/asyncapi.yaml references): the one source of
// truth for what a consumer may rely on. Tests of every package that emits
// or forwards events use it.
package eventschema

import (
	"bytes"
	"fmt"
	"io/fs"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/aura-clinic/aura/docs"
)

// Base is the $id of every event schema but its file name.
const Base = "https://aura.example/schemas/events/"

// Validator checks envelopes against the envelope schema, which checks each
// payload against its event's schema.
type Validator struct {
	envelope *jsonschema.Schema
}

// Load compiles the embedded schemas.
func Load() (*Validator, error) {
	files := docs.EventSchemas()
	names, err := fs.Glob(files, "*.schema.json")
	if err != nil || len(names) == 0 {
		return nil, fmt.Errorf("event schemas: none found (%v)", err)
	}
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, name := range names {
		raw, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if err := c.AddResource(Base+name, doc); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	envelope, err := c.Compile(Base + "envelope.schema.json")
	if err != nil {
		return nil, fmt.Errorf("compile the envelope schema: %w", err)
	}
	return &Validator{envelope: envelope}, nil
}

// Validate checks one event envelope, as JSON.
func (v *Validator) Validate(envelope []byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(envelope))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := v.envelope.Validate(doc); err != nil {
		return fmt.Errorf("%s", strings.TrimSpace(err.Error()))
	}
	return nil
}
