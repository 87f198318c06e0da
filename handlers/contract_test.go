package handlers_test

// The contract check: every exchange the tests make through the harness
// (call, request, do, send and the event stream's openStream) is checked
// against docs/openapi.yaml, the document the server publishes, and the
// router's routes must be the document's operations.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/aura-clinic/aura/docs"
	"github.com/aura-clinic/aura/handlers"
)

// contract is the OpenAPI document, loaded and validated once per test
// binary, with what checking an exchange against it needs.
type contract struct {
	doc    *openapi3.T
	router routers.Router
	// unrouted describes the answers to requests that match no operation:
	// 404 route_not_found, 405 method_not_allowed (components/responses
	// NotFound and MethodNotAllowed) and 429, since the ip rate limit counts
	// them too.
	unrouted *openapi3.Operation
	// codes are each operation's x-problem-codes: status → problem codes.
	codes map[*openapi3.Operation]map[int][]string
}

var (
	contractOnce   sync.Once
	loadedContract *contract
	contractErr    error
)

// theContract returns the document, loading it on first use.
func theContract() (*contract, error) {
	contractOnce.Do(func() { loadedContract, contractErr = loadContract() })
	return loadedContract, contractErr
}

func loadContract() (*contract, error) {
	// The reference UI's assets and the event stream are checked for their
	// status, headers and media type; their bodies are strings.
	for _, media := range []string{"text/html", "text/css", "text/javascript", "image/png", "text/event-stream"} {
		openapi3filter.RegisterBodyDecoder(media, openapi3filter.FileBodyDecoder)
	}
	for _, media := range []string{"application/json", "application/merge-patch+json", handlers.ProblemContentType} {
		openapi3filter.RegisterBodyDecoder(media, strictJSON)
	}

	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	doc, err := loader.LoadFromData(docs.OpenAPI())
	if err != nil {
		return nil, fmt.Errorf("load docs/openapi.yaml: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("docs/openapi.yaml is not a valid OpenAPI document: %w", err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route docs/openapi.yaml: %w", err)
	}
	c := &contract{doc: doc, router: router, codes: map[*openapi3.Operation]map[int][]string{}}
	unrouted := openapi3.NewResponses()
	for status, name := range map[int]string{404: "NotFound", 405: "MethodNotAllowed", 429: "TooManyRequests"} {
		ref := doc.Components.Responses[name]
		if ref == nil {
			return nil, fmt.Errorf("docs/openapi.yaml has no components/responses/%s", name)
		}
		unrouted.Set(strconv.Itoa(status), ref)
	}
	c.unrouted = &openapi3.Operation{OperationID: "(no operation)", Responses: unrouted}
	c.codes[c.unrouted] = map[int][]string{404: {"route_not_found"}, 405: {"method_not_allowed"}, 429: {"rate_limited"}}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			codes, err := problemCodes(op)
			if err != nil {
				return nil, fmt.Errorf("%s %s: x-problem-codes: %w", method, path, err)
			}
			c.codes[op] = codes
		}
	}
	return c, nil
}

// strictJSON decodes a JSON body as kin-openapi does, and also refuses
// anything after the value: a JSON body is one JSON text.
func strictJSON(body io.Reader, h http.Header, schema *openapi3.SchemaRef, enc openapi3filter.EncodingFn) (any, error) {
	data, err := io.ReadAll(body)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	var first json.RawMessage
	if err := dec.Decode(&first); err == nil {
		if _, err := dec.Token(); err != io.EOF {
			return nil, errors.New("more than one JSON value")
		}
	}
	return openapi3filter.JSONBodyDecoder(bytes.NewReader(data), h, schema, enc)
}

// problemCodes reads an operation's x-problem-codes.
func problemCodes(op *openapi3.Operation) (map[int][]string, error) {
	ext, ok := op.Extensions["x-problem-codes"]
	if !ok {
		return nil, nil
	}
	raw, err := json.Marshal(ext)
	if err != nil {
		return nil, err
	}
	var byStatus map[string][]string
	if err := json.Unmarshal(raw, &byStatus); err != nil {
		return nil, err
	}
	codes := map[int][]string{}
	for s, list := range byStatus {
		status, err := strconv.Atoi(s)
		if err != nil {
			return nil, fmt.Errorf("status %q", s)
		}
		codes[status] = list
	}
	return codes, nil
}

// formats are the string formats the document uses that kin-openapi does not
// check by itself (it checks date and date-time).
var formats = map[string]openapi3.StringFormatValidator{
	"uuid":  openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC9562),
	"email": openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForEmail),
	"uri": openapi3.NewCallbackValidator(func(s string) error {
		if u, err := url.Parse(s); err != nil || !u.IsAbs() {
			return errors.New("not an absolute URI")
		}
		return nil
	}),
	"uri-reference": openapi3.NewCallbackValidator(func(s string) error {
		if _, err := url.Parse(s); err != nil {
			return errors.New("not a URI reference")
		}
		return nil
	}),
}

// options are the validation options; a streamed or HEAD response is
// checked without its body.
func options(withoutBody bool) *openapi3filter.Options {
	o := &openapi3filter.Options{
		MultiError:              true,
		IncludeResponseStatus:   true, // an undocumented status is a mismatch
		ExcludeResponseBody:     withoutBody,
		SkipSettingDefaults:     true,
		AuthenticationFunc:      bearerShape,
		SchemaValidationOptions: []openapi3.SchemaValidationOption{openapi3.WithStringFormatValidators(formats)},
	}
	o.WithCustomSchemaErrorFunc(func(err *openapi3.SchemaError) string {
		return fmt.Sprintf("at /%s: %s", strings.Join(err.JSONPointer(), "/"), err.Reason)
	})
	return o
}

var token68 = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)

// bearerShape checks the request meets the document's bearerAuth scheme: an
// Authorization header "Bearer <token>". Whether the key is valid is the
// server's business (401 invalid_api_key).
func bearerShape(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if s := in.SecurityScheme; s == nil || s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
		return fmt.Errorf("security scheme %q is not the bearer scheme this check knows", in.SecuritySchemeName)
	}
	scheme, credentials, _ := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	credentials = strings.TrimLeft(credentials, " ") // credentials = auth-scheme [ 1*SP token68 ] (RFC 9110)
	if !strings.EqualFold(scheme, "Bearer") || !token68.MatchString(credentials) {
		return errors.New("no Authorization: Bearer <token> header")
	}
	return nil
}

// noHead are the GET operations that do not also answer HEAD (the
// document's HEAD convention: every GET operation but /metrics).
var noHead = map[string]bool{"/metrics": true}

// exchange is what the contract check needs of a request that the request
// itself no longer has once sent: its test and the bytes of its body.
type exchange struct {
	t    *testing.T
	body []byte
}

type exchangeKey struct{}

func withExchange(ctx context.Context, t *testing.T, body []byte) context.Context {
	return context.WithValue(ctx, exchangeKey{}, &exchange{t: t, body: body})
}

// exchangeOf returns the exchange of a request built by api.request.
func exchangeOf(req *http.Request) (*exchange, bool) {
	x, ok := req.Context().Value(exchangeKey{}).(*exchange)
	return x, ok
}

// check checks the exchange of req, answered resp with the body raw (or, when
// streamed, a body not read), and reports each mismatch with t.Errorf.
func (x *exchange) check(req *http.Request, resp *http.Response, raw []byte, streamed bool) {
	if x == nil {
		return
	}
	x.t.Helper()
	for _, m := range mismatches(req, x.body, resp.StatusCode, resp.Header, raw, streamed) {
		x.t.Errorf("contract: %s %s → %d: %s", req.Method, req.URL.RequestURI(), resp.StatusCode, m)
	}
}

// mismatches checks one exchange against the document:
//   - the request must match its operation (path and query parameters,
//     headers, bearer security, body and its media type), unless the server
//     refused it with a 4xx problem: tests send invalid requests on purpose;
//   - the response must match the operation's response for its status,
//     always: a documented status, its headers (required ones present) and
//     its body against the schema of its media type;
//   - a problem's code must be one of the operation's x-problem-codes for
//     that status;
//   - a request that matches no operation (an unknown path, or a method the
//     path does not have) must get 404 route_not_found or 405
//     method_not_allowed (or 429), matching components/responses.
//
// HEAD is checked as the GET it mirrors, without a body.
func mismatches(req *http.Request, body []byte, status int, header http.Header, raw []byte, streamed bool) []string {
	c, err := theContract()
	if err != nil {
		return []string{err.Error()}
	}
	head := req.Method == http.MethodHead
	in := &openapi3filter.RequestValidationInput{Request: requestCopy(req, body), Options: options(head || streamed)}
	if head {
		in.Request.Method = http.MethodGet
	}
	route, params, routeErr := c.router.FindRoute(in.Request)
	if routeErr == nil && head && noHead[route.Path] {
		routeErr = routers.ErrMethodNotAllowed
	}
	var out []string
	if routeErr != nil {
		route = &routers.Route{Spec: c.doc, PathItem: &openapi3.PathItem{}, Path: req.URL.Path, Method: in.Request.Method, Operation: c.unrouted}
		in.Route = route
		want := http.StatusNotFound
		if errors.Is(routeErr, routers.ErrMethodNotAllowed) {
			want = http.StatusMethodNotAllowed
		}
		if status != want && status != http.StatusTooManyRequests {
			out = append(out, fmt.Sprintf("matches no operation of the document (%v), so its answer must be %d, got %d", routeErr, want, status))
		}
	} else {
		in.Route, in.PathParams = route, params
		jsonAlike(in.Request, route.Operation)
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && !(status >= 400 && status < 500 && isProblem(header)) {
			out = append(out, fmt.Sprintf("the request does not match %s, yet it was answered %d: %s", route.Operation.OperationID, status, brief(err)))
		}
	}
	res := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: status, Header: header, Options: in.Options}
	res.SetBodyBytes(raw)
	if err := openapi3filter.ValidateResponse(context.Background(), res); err != nil {
		out = append(out, fmt.Sprintf("the response does not match %s: %s", route.Operation.OperationID, brief(err)))
	}
	if m := c.checkProblemCode(route.Operation, status, header, raw); m != "" {
		out = append(out, m)
	}
	if m := undocumentedHeaders(route.Operation, status, header); m != "" {
		out = append(out, m)
	}
	return out
}

// auraHeaders are the response headers of Aura's own protocol: each one a
// response carries must be documented on that response.
var auraHeaders = []string{"X-Request-Id", "Idempotent-Replayed", "Location", "RateLimit", "RateLimit-Policy",
	"Retry-After", "Allow", "WWW-Authenticate"}

// undocumentedHeaders names the headers of Aura's protocol that the response
// carries but the document does not declare for its status.
func undocumentedHeaders(op *openapi3.Operation, status int, header http.Header) string {
	ref := op.Responses.Status(status)
	if ref == nil {
		ref = op.Responses.Default()
	}
	if ref == nil || ref.Value == nil {
		return "" // the status is already a mismatch
	}
	declared := map[string]bool{}
	for name := range ref.Value.Headers {
		declared[http.CanonicalHeaderKey(name)] = true
	}
	var missing []string
	for _, name := range auraHeaders {
		if _, sent := header[http.CanonicalHeaderKey(name)]; sent && !declared[http.CanonicalHeaderKey(name)] {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("the response carries %s, which %s does not document for %d", strings.Join(missing, ", "), op.OperationID, status)
}

// requestCopy is req with body as its body again, for the validator to read.
func requestCopy(req *http.Request, body []byte) *http.Request {
	r := req.Clone(context.Background())
	r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
	if body != nil {
		r.ContentLength = int64(len(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(string(body))), nil }
		r.Body, _ = r.GetBody()
	}
	return r
}

// jsonAlike applies the document's rule for request bodies (info, Bodies):
// any application/*+json media type is read as JSON. A body whose +json type
// the operation does not list is checked as the application/json it lists.
func jsonAlike(r *http.Request, op *openapi3.Operation) {
	media, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(media, "application/") || !strings.HasSuffix(media, "+json") ||
		op.RequestBody == nil || op.RequestBody.Value.Content.Get(media) != nil {
		return
	}
	r.Header.Set("Content-Type", "application/json")
}

// checkProblemCode checks a problem's code is among those the operation
// lists for the status.
func (c *contract) checkProblemCode(op *openapi3.Operation, status int, header http.Header, raw []byte) string {
	if !isProblem(header) || len(raw) == 0 {
		return ""
	}
	var p struct {
		Code string `json:"code"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return "" // the schema check has said what is wrong
	}
	if codes := c.codes[op][status]; !slices.Contains(codes, p.Code) {
		return fmt.Sprintf("problem code %q is not in %s's x-problem-codes for %d %v", p.Code, op.OperationID, status, codes)
	}
	return ""
}

func isProblem(header http.Header) bool {
	media, _, err := mime.ParseMediaType(header.Get("Content-Type"))
	return err == nil && media == handlers.ProblemContentType
}

// brief shortens a validation error to fit a test failure line.
func brief(err error) string {
	s := strings.Join(strings.Fields(err.Error()), " ")
	if len(s) > 600 {
		s = s[:600] + "…"
	}
	return s
}

// The router's routes and the document's operations are the same set of
// (method, path template) pairs, HEAD aside; HEAD is beside every GET but
// /metrics, as the document says. And the live server answers each route
// (no route_not_found, no method_not_allowed) and answers 405 with the
// route set's methods in Allow for a method a path lacks.
func TestRoutesAreTheDocumentsOperations(t *testing.T) {
	c, err := theContract()
	if err != nil {
		t.Fatal(err)
	}
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_, _ = io.WriteString(w, "# HELP aura_outbox_pending Events waiting in the outbox.\n# TYPE aura_outbox_pending gauge\naura_outbox_pending 0\n")
	})
	a := newAPI(t, func(cfg *handlers.Config) { cfg.Metrics = metrics })

	routes := map[string]bool{} // "METHOD /template"
	heads := map[string]bool{}  // templates with HEAD
	err = a.srv.Router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		methods, err := route.GetMethods()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		for _, m := range methods {
			if m == http.MethodHead {
				heads[path] = true
				continue
			}
			routes[m+" "+path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	operations := map[string]bool{}
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			operations[method+" "+path] = true
		}
	}
	if extra := missingFrom(operations, routes); len(extra) > 0 {
		t.Errorf("routes that are not operations of docs/openapi.yaml:\n  %s", strings.Join(extra, "\n  "))
	}
	if missing := missingFrom(routes, operations); len(missing) > 0 {
		t.Errorf("operations of docs/openapi.yaml that no route serves:\n  %s", strings.Join(missing, "\n  "))
	}
	for op := range routes {
		method, path, _ := strings.Cut(op, " ")
		if method == http.MethodGet && heads[path] == noHead[path] {
			t.Errorf("GET %s: HEAD routed %v, the document says %v", path, heads[path], !noHead[path])
		}
	}

	// The live server: every operation is routed, and a method a path lacks
	// is 405 with Allow listing the path's methods.
	allow := map[string][]string{} // path → methods, in the order the server lists them
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"} {
		for op := range routes {
			method, path, _ := strings.Cut(op, " ")
			if method == m || (m == http.MethodHead && method == http.MethodGet && heads[path]) {
				allow[path] = append(allow[path], m)
			}
		}
	}
	for op := range operations {
		method, path, _ := strings.Cut(op, " ")
		r := a.call(method, samplePath(path), "", nil)
		if code := r.str("code"); code == "route_not_found" || code == "method_not_allowed" {
			t.Errorf("%s: the server answers %d %s", op, r.StatusCode, code)
		}
	}
	for path, methods := range allow {
		r := a.call("PUT", samplePath(path), "", nil).wantProblem(t, http.StatusMethodNotAllowed, "method_not_allowed")
		if got, want := r.Header.Get("Allow"), strings.Join(methods, ", "); got != want {
			t.Errorf("PUT %s: Allow %q, want %q", path, got, want)
		}
	}
}

// missingFrom lists the members of set that are not in of, sorted.
func missingFrom(of, set map[string]bool) []string {
	var out []string
	for k := range set {
		if !of[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// samplePath fills a path template's variables: ids with a fresh UUID, an
// asset with a file the reference has.
func samplePath(template string) string {
	return regexp.MustCompile(`\{[^}]+\}`).ReplaceAllStringFunc(template, func(v string) string {
		if v == "{file}" {
			return "swagger-ui.css"
		}
		return uuid.NewString()
	})
}

// The published document and the API reference (its page and every asset,
// GET and HEAD) are exchanges like any other: checked against the document.
func TestContractEndpointsMatchTheDocument(t *testing.T) {
	a := newAPI(t)
	for _, path := range []string{"/openapi.json", "/openapi.yaml", "/docs"} {
		a.call("GET", path, "", nil).want(t, http.StatusOK)
		a.call("HEAD", path, "", nil).want(t, http.StatusOK)
	}
	assets, err := fs.ReadDir(docs.UI(), ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range assets {
		status := http.StatusOK
		if f.Name() == "index.html" { // served at /docs only
			status = http.StatusNotFound
		}
		a.call("GET", "/docs/assets/"+f.Name(), "", nil).want(t, status)
		a.call("HEAD", "/docs/assets/"+f.Name(), "", nil).want(t, status)
	}
	a.call("GET", "/docs/assets/no-such-file.js", "", nil).wantProblem(t, http.StatusNotFound, "asset_not_found")
}

// The check itself catches what it is for: each of these made-up exchanges
// breaks the document in one way, and the last ones keep to it.
func TestContractCheckCatchesMismatches(t *testing.T) {
	id := uuid.NewString()
	problem := func(status int, code string) string {
		return fmt.Sprintf(`{"type":"https://aura.example/problems/%s","title":"T","status":%d,"code":%q,"request_id":"r1"}`, code, status, code)
	}
	clinic := `{"id":"` + id + `","name":"Sol","currency":"EUR","timezone":"Europe/Madrid","created_at":"2026-03-02T09:14:03Z","role":"owner"}`
	const validClinic = `{"name":"Sol","currency":"EUR","timezone":"Europe/Madrid"}`
	json, problemJSON := "application/json", handlers.ProblemContentType
	location := []string{"Location", "/v1/clinics/" + id}
	for _, tc := range []struct {
		name                string
		method, path, auth  string
		body                string
		status              int
		contentType, answer string
		extra               []string // response headers, name then value
		wantMismatch        bool
	}{
		{"a value off its enum", "GET", "/healthz", "", "", 200, json, `{"status":"fine"}`, nil, true},
		{"an unknown member", "GET", "/healthz", "", "", 200, json, `{"status":"ok","uptime":3}`, nil, true},
		{"an undocumented status", "GET", "/healthz", "", "", 418, json, `{"status":"ok"}`, nil, true},
		{"another media type", "GET", "/healthz", "", "", 200, "text/plain", `ok`, nil, true},
		{"a required header missing", "GET", "/healthz", "", "", 200, json, `{"status":"ok"}`, []string{"X-Request-Id", ""}, true},
		{"an undocumented header", "GET", "/healthz", "", "", 200, json, `{"status":"ok"}`, []string{"Location", "/v1/clinics"}, true},
		{"a code the operation does not list", "GET", "/v1/clinics/" + id, "Bearer k", "", 404, problemJSON, problem(404, "patient_not_found"), nil, true},
		{"a problem off its schema", "GET", "/v1/clinics/" + id, "Bearer k", "", 404, problemJSON, `{"code":"clinic_not_found"}`, nil, true},
		{"no Location on a creation", "POST", "/v1/clinics", "Bearer k", validClinic, 201, json, clinic, nil, true},
		{"an invalid body accepted", "POST", "/v1/clinics", "Bearer k", `{"name":"Sol"}`, 201, json, clinic, location, true},
		{"no credentials accepted", "GET", "/v1/clinics/" + id, "", "", 200, json, clinic, nil, true},
		{"an unknown path answered", "GET", "/v1/nothing", "", "", 200, json, `{}`, nil, true},
		{"an unknown method answered", "PUT", "/v1/clinics", "Bearer k", "", 200, json, `{}`, nil, true},
		{"HEAD on /metrics answered", "HEAD", "/metrics", "", "", 200, "text/plain", "", nil, true},
		{"405 without Allow", "DELETE", "/v1/clinics", "Bearer k", "", 405, problemJSON, problem(405, "method_not_allowed"), nil, true},

		{"a creation", "POST", "/v1/clinics", "Bearer k", validClinic, 201, json, clinic, location, false},
		{"an invalid body refused", "POST", "/v1/clinics", "Bearer k", `{"name":"Sol"}`, 422, problemJSON, problem(422, "validation_failed"), nil, false},
		{"no credentials refused", "GET", "/v1/clinics/" + id, "", "", 401, problemJSON, problem(401, "unauthenticated"), []string{"WWW-Authenticate", `Bearer realm="aura"`}, false},
		{"an unknown path", "GET", "/v1/nothing", "", "", 404, problemJSON, problem(404, "route_not_found"), nil, false},
		{"an unknown method", "PUT", "/v1/clinics", "Bearer k", "", 405, problemJSON, problem(405, "method_not_allowed"), []string{"Allow", "GET, HEAD, POST"}, false},
		{"HEAD", "HEAD", "/healthz", "", "", 200, json, "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, "http://127.0.0.1"+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			if tc.method == http.MethodPost {
				req.Header.Set("Idempotency-Key", uuid.NewString())
			}
			header := http.Header{"Content-Type": {tc.contentType}, "X-Request-Id": {"r1"}}
			for i := 0; i+1 < len(tc.extra); i += 2 {
				if tc.extra[i+1] == "" {
					header.Del(tc.extra[i])
				} else {
					header.Set(tc.extra[i], tc.extra[i+1])
				}
			}
			got := mismatches(req, body, tc.status, header, []byte(tc.answer), false)
			if tc.wantMismatch && len(got) == 0 {
				t.Errorf("no mismatch found")
			}
			if !tc.wantMismatch && len(got) > 0 {
				t.Errorf("mismatches: %q", got)
			}
			t.Log(got)
		})
	}
}

// An empty query parameter is ignored, as if absent (the document's
// allowEmptyValue): filters, limit and cursor alike, and the stream's
// last_event_id.
func TestEmptyQueryValuesAreIgnored(t *testing.T) {
	a := newAPI(t)
	key := a.newUser(email(t, "owner"))
	clinic := "/v1/clinics/" + a.newClinic(key)
	for _, path := range []string{
		"/v1/clinics?limit=&cursor=",
		"/v1/api-keys?limit=&cursor=",
		clinic + "/members?limit=&cursor=",
		clinic + "/patients?limit=&cursor=",
		clinic + "/appointments?limit=&cursor=&practitioner_id=&patient_id=&status=&from=&to=",
		clinic + "/invoices?limit=&cursor=&patient_id=&status=",
		clinic + "/events?limit=&cursor=&event=",
	} {
		a.call("GET", path, key, nil).want(t, http.StatusOK)
	}
	a.openStream(key, strings.TrimPrefix(clinic, "/v1/clinics/"), "?last_event_id=").close()
}
