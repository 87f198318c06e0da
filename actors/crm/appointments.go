package crm

import (
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
)

// AppointmentStatus is where an appointment is in its life.
type AppointmentStatus string

// The statuses of an appointment: booked, then cancelled or completed.
const (
	StatusBooked    AppointmentStatus = "booked"
	StatusCancelled AppointmentStatus = "cancelled"
	StatusCompleted AppointmentStatus = "completed"
)

// Errors of the appointment rules.
var (
	ErrAppointmentNotFound = fault.Define("appointment_not_found", fault.NotFound, "Appointment not found")
	ErrAppointmentConflict = fault.Define("appointment_conflict", fault.Conflict, "Appointment conflict")
	ErrInvalidTransition   = fault.Define("invalid_transition", fault.Unprocessable, "Invalid status transition")
	ErrNotAPractitioner    = fault.Define("not_a_practitioner", fault.Unprocessable, "Not a practitioner of the clinic")
)

// Appointment is a patient's slot with a practitioner. Times are half-open:
// [StartsAt, EndsAt). Notes are health data: never in logs or events.
type Appointment struct {
	ID             uuid.UUID         `json:"id"`
	ClinicID       uuid.UUID         `json:"clinic_id"`
	PatientID      uuid.UUID         `json:"patient_id"`
	PractitionerID uuid.UUID         `json:"practitioner_id"`
	StartsAt       time.Time         `json:"starts_at"`
	EndsAt         time.Time         `json:"ends_at"`
	Status         AppointmentStatus `json:"status"`
	Notes          *string           `json:"notes"`
	CancelReason   *string           `json:"cancel_reason"`
	CreatedAt      time.Time         `json:"created_at"`
	UpdatedAt      time.Time         `json:"updated_at"`
}

// Booking is what a client sends to book an appointment. Ids and times
// arrive as strings so that a malformed one is reported at its member.
type Booking struct {
	PatientID      string  `json:"patient_id"`
	PractitionerID string  `json:"practitioner_id"`
	StartsAt       string  `json:"starts_at"` // RFC 3339
	EndsAt         string  `json:"ends_at"`   // RFC 3339
	Notes          *string `json:"notes"`
}

// maxAppointment bounds an appointment's length.
const maxAppointment = 24 * time.Hour

// NewAppointment validates a booking and returns the booked appointment.
// Times are kept in UTC at microsecond precision, as the database stores them.
func NewAppointment(clinicID uuid.UUID, b Booking, now time.Time) (Appointment, error) {
	var errs fault.Fields
	patient := ParseID(&errs, "/patient_id", b.PatientID)
	practitioner := ParseID(&errs, "/practitioner_id", b.PractitionerID)
	starts, startsOK := ParseTime(&errs, "/starts_at", b.StartsAt)
	ends, endsOK := ParseTime(&errs, "/ends_at", b.EndsAt)
	if startsOK && endsOK {
		switch d := ends.Sub(starts); {
		case d <= 0:
			errs.Add("/ends_at", "not_after_start", "must be after starts_at")
		case d > maxAppointment:
			errs.Add("/ends_at", "too_long", "must be at most 24 hours after starts_at")
		}
	}
	notes := trimmed(b.Notes)
	if notes != nil {
		errs.Length("/notes", *notes, 0, 2000)
	}
	if err := errs.Err(); err != nil {
		return Appointment{}, err
	}
	return Appointment{
		ID: uuid.Must(uuid.NewV7()), ClinicID: clinicID, PatientID: patient, PractitionerID: practitioner,
		StartsAt: starts, EndsAt: ends, Status: StatusBooked, Notes: notes,
		CreatedAt: now, UpdatedAt: now,
	}, nil
}

// ParseID reads a required UUID member, recording a field error if it is
// missing or malformed.
func ParseID(errs *fault.Fields, pointer, s string) uuid.UUID {
	if s == "" {
		errs.Add(pointer, "required", "is required")
		return uuid.Nil
	}
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		errs.Add(pointer, "invalid_id", "must be an id such as 01a23cb1-af57-7762-a3fc-20d28cafa084")
		return uuid.Nil
	}
	return id
}

// ParseTime reads a required RFC 3339 time member as the database will
// store it (UTC, microseconds), recording a field error if it is missing or
// malformed.
func ParseTime(errs *fault.Fields, pointer, s string) (time.Time, bool) {
	if s == "" {
		errs.Add(pointer, "required", "is required (RFC 3339, e.g. 2026-12-03T10:00:00+01:00)")
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		errs.Add(pointer, "invalid_time", "must be an RFC 3339 time such as 2026-12-03T10:00:00+01:00")
		return time.Time{}, false
	}
	return dbTime(t), true
}

// Overlaps reports whether a and b would double-book a practitioner: same
// practitioner, neither cancelled, and intersecting half-open intervals.
func (a Appointment) Overlaps(b Appointment) bool {
	return a.PractitionerID == b.PractitionerID &&
		a.Status != StatusCancelled && b.Status != StatusCancelled &&
		a.StartsAt.Before(b.EndsAt) && b.StartsAt.Before(a.EndsAt)
}

// CheckFree returns ErrAppointmentConflict when a overlaps any of others.
func (a Appointment) CheckFree(others []Appointment) error {
	for _, o := range others {
		if o.ID != a.ID && a.Overlaps(o) {
			return ErrAppointmentConflict.Errorf("The practitioner already has an appointment from %s to %s.",
				o.StartsAt.Format(time.RFC3339), o.EndsAt.Format(time.RFC3339))
		}
	}
	return nil
}

// Cancel cancels a booked appointment, freeing its slot.
func (a *Appointment) Cancel(reason string, now time.Time) error {
	reason = strings.TrimSpace(reason)
	var errs fault.Fields
	errs.Length("/reason", reason, 1, 500)
	if err := errs.Err(); err != nil {
		return err
	}
	if err := a.transition(StatusCancelled); err != nil {
		return err
	}
	a.CancelReason, a.UpdatedAt = &reason, now
	return nil
}

// Complete marks a booked appointment as held.
func (a *Appointment) Complete(now time.Time) error {
	if err := a.transition(StatusCompleted); err != nil {
		return err
	}
	a.UpdatedAt = now
	return nil
}

// transition moves a booked appointment to next; nothing else moves.
func (a *Appointment) transition(next AppointmentStatus) error {
	if a.Status != StatusBooked {
		return ErrInvalidTransition.Errorf("A %s appointment cannot become %s; only booked appointments can.", a.Status, next)
	}
	a.Status = next
	return nil
}

// AppointmentFilter narrows an appointment list; zero fields do not filter.
type AppointmentFilter struct {
	PractitionerID uuid.UUID
	PatientID      uuid.UUID
	Status         AppointmentStatus
	From, To       time.Time // appointments that overlap [From, To)
}

// ParseAppointmentStatus returns the status named s.
func ParseAppointmentStatus(s string) (AppointmentStatus, bool) {
	switch st := AppointmentStatus(s); st {
	case StatusBooked, StatusCancelled, StatusCompleted:
		return st, true
	}
	return "", false
}

func trimmed(s *string) *string {
	if s == nil {
		return nil
	}
	t := strings.TrimSpace(*s)
	if t == "" {
		return nil
	}
	return &t
}

// dbTime is t as the database returns it: UTC, microsecond precision.
func dbTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
