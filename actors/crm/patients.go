// Package crm holds the CRM domain: patients (and, later, appointments). Its
// rules are plain functions and methods with no dependency on HTTP, actors or
// SQL, so they are tested without a database.
package crm

import (
	"regexp"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/actors/platform"
)

// DateLayout is the form of dates of birth: YYYY-MM-DD.
const DateLayout = "2006-01-02"

// ErrPatientNotFound is returned for a patient that does not exist in the clinic.
var ErrPatientNotFound = fault.Define("patient_not_found", fault.NotFound, "Patient not found")

// Patient is a person a clinic cares for. Every field but the names is
// optional (nil when unknown). All of it is health data: it never goes to
// logs or events.
type Patient struct {
	ID          uuid.UUID `json:"id"`
	ClinicID    uuid.UUID `json:"clinic_id"`
	FirstName   string    `json:"first_name"`
	LastName    string    `json:"last_name"`
	DateOfBirth *string   `json:"date_of_birth"` // YYYY-MM-DD
	Email       *string   `json:"email"`
	Phone       *string   `json:"phone"`
	Notes       *string   `json:"notes"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// PatientFields are the fields a client writes, as a JSON merge patch: an
// absent member is left alone, null clears it. Creating a patient applies
// them to an empty patient.
type PatientFields struct {
	FirstName   Optional[string] `json:"first_name"`
	LastName    Optional[string] `json:"last_name"`
	DateOfBirth Optional[string] `json:"date_of_birth"`
	Email       Optional[string] `json:"email"`
	Phone       Optional[string] `json:"phone"`
	Notes       Optional[string] `json:"notes"`
}

// NewPatient returns a new patient of the clinic with the given fields, or a
// validation error naming every invalid field.
func NewPatient(clinicID uuid.UUID, f PatientFields, now time.Time) (Patient, error) {
	p := Patient{ID: uuid.Must(uuid.NewV7()), ClinicID: clinicID, CreatedAt: now, UpdatedAt: now}
	if err := p.Update(f, now); err != nil {
		return Patient{}, err
	}
	return p, nil
}

// Update applies the fields to the patient. On a validation error the
// patient is left unchanged.
func (p *Patient) Update(f PatientFields, now time.Time) error {
	next := *p
	apply(&next.FirstName, f.FirstName)
	apply(&next.LastName, f.LastName)
	applyOptional(&next.DateOfBirth, f.DateOfBirth)
	applyOptional(&next.Email, f.Email)
	applyOptional(&next.Phone, f.Phone)
	applyOptional(&next.Notes, f.Notes)
	if err := next.validate(now); err != nil {
		return err
	}
	next.UpdatedAt = now
	*p = next
	return nil
}

func apply(dst *string, o Optional[string]) {
	switch {
	case !o.Set:
	case o.Null:
		*dst = ""
	default:
		*dst = strings.TrimSpace(o.Value)
	}
}

// applyOptional treats null and "" alike: both clear the field.
func applyOptional(dst **string, o Optional[string]) {
	if !o.Set {
		return
	}
	v := strings.TrimSpace(o.Value)
	if o.Null || v == "" {
		*dst = nil
		return
	}
	*dst = &v
}

var phoneShape = regexp.MustCompile(`^\+?[0-9 ()./-]{3,32}$`)

// earliestBirth bounds dates of birth from below, as the database does.
var earliestBirth = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)

func (p *Patient) validate(now time.Time) error {
	var errs fault.Fields
	errs.Length("/first_name", p.FirstName, 1, 100)
	errs.Length("/last_name", p.LastName, 1, 100)
	if p.DateOfBirth != nil {
		d, err := time.Parse(DateLayout, *p.DateOfBirth)
		switch {
		case err != nil:
			errs.Add("/date_of_birth", "invalid_date", "must be a date in the form YYYY-MM-DD")
		case d.Before(earliestBirth):
			errs.Add("/date_of_birth", "out_of_range", "must be on or after 1900-01-01")
		case d.After(now.AddDate(0, 0, 1)): // a day of slack for time zones
			errs.Add("/date_of_birth", "out_of_range", "must not be in the future")
		}
	}
	if p.Email != nil {
		addr, err := platform.NormalizeEmail(*p.Email)
		if err != nil {
			errs.Add("/email", "invalid_email", err.Error())
		} else {
			p.Email = &addr
		}
	}
	if p.Phone != nil && !phoneShape.MatchString(*p.Phone) {
		errs.Add("/phone", "invalid_phone", "must be a phone number of 3 to 32 digits, spaces and ()./- with an optional leading +")
	}
	if p.Notes != nil {
		errs.Length("/notes", *p.Notes, 0, 10000)
	}
	return errs.Err()
}

// ChangedFields names the client-writable members whose values differ
// between two versions of a patient (names only: values are health data).
func ChangedFields(before, after Patient) []string {
	var changed []string
	add := func(name string, differ bool) {
		if differ {
			changed = append(changed, name)
		}
	}
	add("first_name", before.FirstName != after.FirstName)
	add("last_name", before.LastName != after.LastName)
	add("date_of_birth", !equalPtr(before.DateOfBirth, after.DateOfBirth))
	add("email", !equalPtr(before.Email, after.Email))
	add("phone", !equalPtr(before.Phone, after.Phone))
	add("notes", !equalPtr(before.Notes, after.Notes))
	return changed
}

func equalPtr(a, b *string) bool {
	return (a == nil && b == nil) || (a != nil && b != nil && *a == *b)
}
