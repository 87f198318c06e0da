package handlers

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gorilla/mux"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/docs"
)

var errAssetNotFound = fault.Define("asset_not_found", fault.NotFound, "Asset not found")

// contract is the public contract the server publishes: the OpenAPI
// document (YAML as written, JSON converted once at start) and the API
// reference UI.
type contract struct {
	yaml, json []byte
	ui         fs.FS
}

func loadContract() (*contract, error) {
	doc, err := openapi3.NewLoader().LoadFromData(docs.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("load the OpenAPI document: %w", err)
	}
	asJSON, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode the OpenAPI document: %w", err)
	}
	return &contract{yaml: docs.OpenAPI(), json: asJSON, ui: docs.UI()}, nil
}

func (s *Server) openAPIJSON(*call) (reply, error) {
	return raw("application/json", s.contract.json), nil
}

func (s *Server) openAPIYAML(*call) (reply, error) {
	return raw("application/yaml", s.contract.yaml), nil
}

// docsPage is the browsable API reference, built from /openapi.json.
func (s *Server) docsPage(*call) (reply, error) {
	page, err := fs.ReadFile(s.contract.ui, "index.html")
	if err != nil {
		return reply{}, err
	}
	return raw("text/html; charset=utf-8", page), nil
}

// docsAsset serves the reference's scripts, styles and icon.
func (s *Server) docsAsset(c *call) (reply, error) {
	name := path.Clean(mux.Vars(c.r)["file"])
	body, err := fs.ReadFile(s.contract.ui, name)
	if err != nil || name == "index.html" {
		return reply{}, errAssetNotFound.New("The API reference has no such file.")
	}
	kind := mime.TypeByExtension(path.Ext(name))
	if kind == "" {
		kind = "application/octet-stream"
	}
	return raw(kind, body), nil
}

func raw(contentType string, body []byte) reply {
	return reply{status: http.StatusOK, raw: body, contentType: contentType}
}
