package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/google/uuid"
	"github.com/gorilla/mux"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/platform"
	"github.com/aura-clinic/aura/actors/ratelimit"
)

// access says who may call a route.
type access struct {
	authenticated bool
	// permission, when set, makes the route a clinic route: the caller must be
	// a member of {clinic_id} (else 404) whose role grants it (else 403).
	permission platform.Permission
}

var (
	public   = access{}
	signedIn = access{authenticated: true}
)

// member is the access of a clinic route needing permission p.
func member(p platform.Permission) access { return access{authenticated: true, permission: p} }

// route is one operation of the API.
type route struct {
	method string
	path   string
	access access
	handle endpoint
	class  ratelimit.Class // the rate class its requests count against
	// streaming routes answer with a stream and have no request deadline.
	streaming bool
}

func get(path string, a access, h endpoint) route   { return newRoute(http.MethodGet, path, a, h) }
func post(path string, a access, h endpoint) route  { return newRoute(http.MethodPost, path, a, h) }
func patch(path string, a access, h endpoint) route { return newRoute(http.MethodPatch, path, a, h) }
func del(path string, a access, h endpoint) route   { return newRoute(http.MethodDelete, path, a, h) }

func newRoute(method, path string, a access, h endpoint) route {
	return route{method: method, path: path, access: a, handle: h, class: classOf(method)}
}

// stream marks a route whose answer is a long-lived stream.
func (rt route) stream() route {
	rt.streaming = true
	return rt
}

// payments puts the route in the payments rate class.
func (rt route) payments() route {
	rt.class = ratelimit.ClassPayments
	return rt
}

// endpoint handles a request whose caller has been checked, and returns the
// reply to send or an error to render as a problem.
type endpoint func(c *call) (reply, error)

// call is a request with what the middleware resolved about its caller.
type call struct {
	r      *http.Request
	ctx    context.Context
	user   platform.User
	clinic platform.ClinicMembership // clinic routes only
	meta   actors.Meta
	body   []byte // POST and PATCH: the raw JSON body
}

// reply is a successful response.
type reply struct {
	status   int
	body     any // nil for no body
	location string
	// stream, when set, writes a text/event-stream body until it returns.
	stream func(w http.ResponseWriter)
	// raw, when set, is the body as is, of type contentType.
	raw         []byte
	contentType string
}

func ok(body any) reply { return reply{status: http.StatusOK, body: body} }

func created(body any, location string) reply {
	return reply{status: http.StatusCreated, body: body, location: location}
}

// serve turns a route into an http.Handler: authenticate, resolve the clinic
// membership and role, run the endpoint, render the reply or the problem.
func (s *Server) serve(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !rt.streaming { // a stream lasts as long as its client
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
			defer cancel()
			r = r.WithContext(ctx)
		}
		info := infoFrom(r.Context())
		info.route = rt.path
		c := &call{r: r, ctx: r.Context(), meta: actors.Meta{RequestID: info.requestID}}
		rep, err := s.run(c, rt)
		if info.replayed {
			w.Header().Set(IdempotentReplayedHeader, "true")
		}
		if err != nil {
			s.writeProblem(w, r, err)
			return
		}
		s.writeReply(w, r, rep)
	})
}

// run takes a request through its steps, in order: the ip rate limit,
// authentication and membership, the user and clinic rate limits, the
// idempotency key and body, and the endpoint.
func (s *Server) run(c *call, rt route) (reply, error) {
	if err := s.limitEdge(c.r, ratelimit.ScopeIP, s.clientIP(c.r), rt.class); err != nil {
		return reply{}, err
	}
	if err := s.admit(c, rt.access); err != nil {
		return reply{}, err
	}
	infoFrom(c.ctx).userID = c.user.ID
	if err := s.limitCaller(c, rt); err != nil {
		return reply{}, err
	}
	if err := s.prepare(c, rt); err != nil {
		return reply{}, err
	}
	return rt.handle(c)
}

// limitCaller counts a signed-in request against its user and clinic
// buckets: the clinic actor's on clinic routes, the edge's elsewhere.
func (s *Server) limitCaller(c *call, rt route) error {
	switch {
	case c.meta.ClinicID != uuid.Nil:
		d, err := s.clinics.Admit(c.ctx, c.meta.ClinicID, c.user.ID, rt.class)
		if err != nil {
			return err
		}
		return record(c.r, d)
	case c.user.ID != uuid.Nil:
		return s.limitEdge(c.r, ratelimit.ScopeUser, c.user.ID.String(), rt.class)
	default:
		return nil
	}
}

// admit authenticates the caller and, on clinic routes, checks membership
// (in the same query) before anything else, so a non-member learns nothing
// about the clinic.
func (s *Server) admit(c *call, a access) error {
	if !a.authenticated {
		return nil
	}
	clinicID, clinicErr := uuid.Nil, error(nil)
	if a.permission != "" {
		clinicID, clinicErr = parseID(mux.Vars(c.r)["clinic_id"])
	}
	caller, err := s.authenticate(c.r, clinicID)
	if err != nil {
		return err
	}
	c.user, c.meta.UserID = caller.User, caller.User.ID
	if a.permission == "" {
		return nil
	}
	if clinicErr != nil || caller.Member == nil {
		return platform.ErrClinicNotFound.New("No clinic with this id is visible to you.")
	}
	c.clinic, c.meta.ClinicID = *caller.Member, clinicID
	if !c.clinic.Role.Can(a.permission) {
		return fault.ErrForbidden.Errorf("Your role (%s) does not allow this.", c.clinic.Role)
	}
	return nil
}

// prepare reads what the endpoint needs of the request beyond its caller:
// every POST's Idempotency-Key, and the body of POST and PATCH, whose
// canonical form goes into the key's fingerprint.
func (s *Server) prepare(c *call, rt route) error {
	if rt.method != http.MethodPost && rt.method != http.MethodPatch {
		return nil
	}
	var key string
	if rt.method == http.MethodPost {
		var err error
		if key, err = idempotencyKey(c.r); err != nil {
			return err
		}
	}
	body, err := s.readBody(c.r)
	if err != nil {
		return err
	}
	c.body = body
	if key != "" {
		c.meta.Idempotency = &actors.Idempotency{Key: key, Fingerprint: fingerprint(rt.method, rt.path, body)}
	}
	return nil
}

// parseID parses an id in the one form the API documents and returns
// (8-4-4-4-12 hex digits); other spellings uuid.Parse accepts are malformed.
func parseID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.Nil, errors.New("not an id")
	}
	return uuid.Parse(s)
}

// pathID parses the path variable name as a UUID; a malformed id is simply
// not found.
func (c *call) pathID(name string, notFound fault.Code) (uuid.UUID, error) {
	id, err := parseID(mux.Vars(c.r)[name])
	if err != nil {
		return uuid.Nil, notFound.New("No resource has this id.")
	}
	return id, nil
}

func (s *Server) writeReply(w http.ResponseWriter, r *http.Request, rep reply) {
	writeRateHeaders(w.Header(), infoFrom(r.Context()).limits)
	if rep.stream != nil {
		h := w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Accel-Buffering", "no")
		w.WriteHeader(rep.status)
		rep.stream(w)
		return
	}
	if rep.location != "" {
		w.Header().Set("Location", rep.location)
	}
	if rep.raw != nil {
		w.Header().Set("Content-Type", rep.contentType)
		w.WriteHeader(rep.status)
		_, _ = w.Write(rep.raw)
		return
	}
	if rep.body == nil {
		w.WriteHeader(rep.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_ = json.NewEncoder(w).Encode(rep.body)
}
