package messaging

import (
	"time"

	"github.com/google/uuid"
)

// The ten domain events, by name.
const (
	ClinicCreatedName        = "platform.clinic.created"
	MemberAddedName          = "platform.member.added"
	PatientCreatedName       = "crm.patient.created"
	PatientUpdatedName       = "crm.patient.updated"
	AppointmentBookedName    = "crm.appointment.booked"
	AppointmentCancelledName = "crm.appointment.cancelled"
	InvoiceIssuedName        = "billing.invoice.issued"
	PaymentRecordedName      = "billing.payment.recorded"
	RefundRecordedName       = "billing.refund.recorded"
	InvoicePaidName          = "billing.invoice.paid"
)

// Names lists every event name, in the order docs/EVENTS.md gives them.
var Names = []string{
	ClinicCreatedName, MemberAddedName, PatientCreatedName, PatientUpdatedName, AppointmentBookedName,
	AppointmentCancelledName, InvoiceIssuedName, PaymentRecordedName, RefundRecordedName, InvoicePaidName,
}

// ClinicCreated: a clinic was created; its creator is its owner.
type ClinicCreated struct {
	ClinicID uuid.UUID `json:"clinic_id"`
	Name     string    `json:"name"`
	Currency string    `json:"currency"`
	Timezone string    `json:"timezone"`
	OwnerID  uuid.UUID `json:"owner_id"`
}

// MemberAdded: a user became a member of a clinic.
type MemberAdded struct {
	UserID uuid.UUID `json:"user_id"`
	Role   string    `json:"role"`
}

// PatientCreated: a patient was registered. No personal details.
type PatientCreated struct {
	PatientID uuid.UUID `json:"patient_id"`
}

// PatientUpdated: a patient's record changed; Fields names the members that
// changed, never their values.
type PatientUpdated struct {
	PatientID uuid.UUID `json:"patient_id"`
	Fields    []string  `json:"fields"`
}

// AppointmentBooked: an appointment was booked.
type AppointmentBooked struct {
	AppointmentID  uuid.UUID `json:"appointment_id"`
	PatientID      uuid.UUID `json:"patient_id"`
	PractitionerID uuid.UUID `json:"practitioner_id"`
	StartsAt       time.Time `json:"starts_at"`
	EndsAt         time.Time `json:"ends_at"`
}

// AppointmentCancelled: an appointment was cancelled, freeing its slot. The
// reason, free text, is not carried.
type AppointmentCancelled struct {
	AppointmentID  uuid.UUID `json:"appointment_id"`
	PatientID      uuid.UUID `json:"patient_id"`
	PractitionerID uuid.UUID `json:"practitioner_id"`
	StartsAt       time.Time `json:"starts_at"`
	EndsAt         time.Time `json:"ends_at"`
}

// InvoiceIssued: an invoice was issued with the clinic's next number.
type InvoiceIssued struct {
	InvoiceID     uuid.UUID  `json:"invoice_id"`
	Number        int64      `json:"number"`
	DisplayNumber string     `json:"display_number"`
	PatientID     uuid.UUID  `json:"patient_id"`
	AppointmentID *uuid.UUID `json:"appointment_id"`
	Currency      string     `json:"currency"`
	Subtotal      int64      `json:"subtotal"`
	Tax           int64      `json:"tax"`
	Total         int64      `json:"total"`
}

// PaymentRecorded: a payment was recorded against an invoice.
type PaymentRecorded struct {
	PaymentID  uuid.UUID `json:"payment_id"`
	InvoiceID  uuid.UUID `json:"invoice_id"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	Method     string    `json:"method"`
	BalanceDue int64     `json:"balance_due"`
}

// RefundRecorded: part of a payment was refunded.
type RefundRecorded struct {
	RefundID   uuid.UUID `json:"refund_id"`
	PaymentID  uuid.UUID `json:"payment_id"`
	InvoiceID  uuid.UUID `json:"invoice_id"`
	Amount     int64     `json:"amount"`
	Currency   string    `json:"currency"`
	BalanceDue int64     `json:"balance_due"`
}

// InvoicePaid: an invoice's balance reached zero.
type InvoicePaid struct {
	InvoiceID      uuid.UUID `json:"invoice_id"`
	Total          int64     `json:"total"`
	AmountPaid     int64     `json:"amount_paid"`
	AmountRefunded int64     `json:"amount_refunded"`
	Currency       string    `json:"currency"`
}

// EventName implements Event.
func (ClinicCreated) EventName() string { return ClinicCreatedName }

// EventName implements Event.
func (MemberAdded) EventName() string { return MemberAddedName }

// EventName implements Event.
func (PatientCreated) EventName() string { return PatientCreatedName }

// EventName implements Event.
func (PatientUpdated) EventName() string { return PatientUpdatedName }

// EventName implements Event.
func (AppointmentBooked) EventName() string { return AppointmentBookedName }

// EventName implements Event.
func (AppointmentCancelled) EventName() string { return AppointmentCancelledName }

// EventName implements Event.
func (InvoiceIssued) EventName() string { return InvoiceIssuedName }

// EventName implements Event.
func (PaymentRecorded) EventName() string { return PaymentRecordedName }

// EventName implements Event.
func (RefundRecorded) EventName() string { return RefundRecordedName }

// EventName implements Event.
func (InvoicePaid) EventName() string { return InvoicePaidName }
