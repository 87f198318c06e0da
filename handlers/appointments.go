package handlers

import (
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/commands"
	"github.com/aura-clinic/aura/actors/crm"
)

func appointmentPath(a crm.Appointment) string {
	return "/v1/clinics/" + a.ClinicID.String() + "/appointments/" + a.ID.String()
}

func (s *Server) bookAppointment(c *call) (reply, error) {
	cmd := commands.BookAppointment{CallerRole: c.clinic.Role}
	if err := c.decode(&cmd.Booking); err != nil {
		return reply{}, err
	}
	a, err := execute(c, s.clinics, cmd)
	if err != nil {
		return reply{}, err
	}
	return created(a, appointmentPath(a)), nil
}

func (s *Server) cancelAppointment(c *call) (reply, error) {
	cmd := commands.CancelAppointment{CallerRole: c.clinic.Role}
	var err error
	if cmd.AppointmentID, err = c.pathID("appointment_id", crm.ErrAppointmentNotFound); err != nil {
		return reply{}, err
	}
	if err := c.decode(&cmd); err != nil {
		return reply{}, err
	}
	a, err := execute(c, s.clinics, cmd)
	if err != nil {
		return reply{}, err
	}
	return ok(a), nil
}

func (s *Server) completeAppointment(c *call) (reply, error) {
	cmd := commands.CompleteAppointment{CallerRole: c.clinic.Role}
	var err error
	if cmd.AppointmentID, err = c.pathID("appointment_id", crm.ErrAppointmentNotFound); err != nil {
		return reply{}, err
	}
	if err := c.decode(&struct{}{}); err != nil { // the body, if any, must be {}
		return reply{}, err
	}
	a, err := execute(c, s.clinics, cmd)
	if err != nil {
		return reply{}, err
	}
	return ok(a), nil
}

func (s *Server) listAppointments(c *call) (reply, error) {
	page, err := c.page()
	if err != nil {
		return reply{}, err
	}
	q := c.query()
	f := crm.AppointmentFilter{
		PractitionerID: q.id("practitioner_id"),
		PatientID:      q.id("patient_id"),
		From:           q.time("from"),
		To:             q.time("to"),
	}
	if st := q.get("status"); st != "" {
		var known bool
		if f.Status, known = crm.ParseAppointmentStatus(st); !known {
			q.fail("status", "must be booked, cancelled or completed")
		}
	}
	if err := q.err(); err != nil {
		return reply{}, err
	}
	list, err := s.queries.ListAppointments(c.ctx, c.clinic.ID, f, page)
	if err != nil {
		return reply{}, err
	}
	return listReply(list, func(a crm.Appointment) uuid.UUID { return a.ID }), nil
}

func (s *Server) getAppointment(c *call) (reply, error) {
	id, err := c.pathID("appointment_id", crm.ErrAppointmentNotFound)
	if err != nil {
		return reply{}, err
	}
	a, err := s.queries.Appointment(c.ctx, c.clinic.ID, id)
	if err != nil {
		return reply{}, err
	}
	return ok(a), nil
}

// queryParams reads optional filters, collecting the first malformed one.
type queryParams struct {
	c     *call
	first error
}

func (c *call) query() *queryParams { return &queryParams{c: c} }

func (q *queryParams) get(name string) string { return q.c.r.URL.Query().Get(name) }

func (q *queryParams) fail(name, detail string) {
	if q.first == nil {
		q.first = errInvalidParameter.Errorf("%s %s.", name, detail)
	}
}

func (q *queryParams) err() error { return q.first }

// id reads an optional UUID filter.
func (q *queryParams) id(name string) uuid.UUID {
	s := q.get(name)
	if s == "" {
		return uuid.Nil
	}
	id, err := parseID(s)
	if err != nil {
		q.fail(name, "must be an id")
	}
	return id
}

// time reads an optional RFC 3339 filter.
func (q *queryParams) time(name string) time.Time {
	s := q.get(name)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		q.fail(name, "must be an RFC 3339 time such as 2026-12-03T10:00:00Z")
	}
	return t
}
