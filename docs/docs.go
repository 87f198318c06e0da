// Package docs embeds Aura's public contract in the binary: the OpenAPI
// document, the events' JSON Schemas and the browsable API reference (Swagger UI, vendored from the
// npm package swagger-ui-dist, so no CDN is needed).
package docs

import (
	"embed"
	"io/fs"
)

//go:embed openapi.yaml
var openAPI []byte

//go:embed ui
var ui embed.FS

//go:embed events/*.schema.json
var eventSchemas embed.FS

// OpenAPI returns the OpenAPI document, as YAML.
func OpenAPI() []byte { return openAPI }

// EventSchemas returns the JSON Schemas of the event envelope and of each
// event's payload (envelope.schema.json, <event name>.schema.json).
func EventSchemas() fs.FS {
	sub, err := fs.Sub(eventSchemas, "events")
	if err != nil {
		panic(err) // unreachable: the path is a literal
	}
	return sub
}

// UI returns the API reference's files: index.html and its assets.
func UI() fs.FS {
	sub, err := fs.Sub(ui, "ui")
	if err != nil {
		panic(err) // unreachable: the path is a literal
	}
	return sub
}
