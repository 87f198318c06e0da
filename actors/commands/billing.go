package commands

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors"
	"github.com/aura-clinic/aura/actors/billing"
	"github.com/aura-clinic/aura/actors/crm"
	"github.com/aura-clinic/aura/actors/fault"
	"github.com/aura-clinic/aura/messaging"
	"github.com/aura-clinic/aura/schema/store"
)

// IssueInvoice issues an invoice with the clinic's next number.
type IssueInvoice struct {
	Request billing.InvoiceRequest
	// Currency and Timezone are the clinic's, resolved by the edge.
	Currency string
	Timezone *time.Location
}

// Execute implements actors.Command.
func (c IssueInvoice) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (billing.Invoice, error) {
	inv, err := billing.NewInvoice(m.ClinicID, c.Currency, c.Request, now())
	if err != nil {
		return billing.Invoice{}, err
	}
	if _, err := q.Patient(ctx, m.ClinicID, inv.PatientID); err != nil {
		return billing.Invoice{}, unknownPatient(err)
	}
	if inv.AppointmentID != nil {
		a, err := q.Appointment(ctx, m.ClinicID, *inv.AppointmentID)
		if fault.HasCode(err, crm.ErrAppointmentNotFound) {
			var f fault.Fields
			f.Add("/appointment_id", "not_found", "is not an appointment of this clinic")
			return billing.Invoice{}, f.Err()
		}
		if err != nil {
			return billing.Invoice{}, err
		}
		if a.PatientID != inv.PatientID {
			return billing.Invoice{}, billing.ErrAppointmentMismatch.New("The appointment is another patient's.")
		}
	}
	// Everything that can fail has been checked: take the number last, so
	// the clinic's counter row is locked as briefly as possible.
	n, err := q.NextInvoiceNumber(ctx, m.ClinicID)
	if err != nil {
		return billing.Invoice{}, err
	}
	inv.AssignNumber(n, c.Timezone)
	if err := q.InsertInvoice(ctx, inv); err != nil {
		return billing.Invoice{}, err
	}
	q.Emit(m.ClinicID, messaging.InvoiceIssued{
		InvoiceID: inv.ID, Number: inv.Number, DisplayNumber: inv.DisplayNumber, PatientID: inv.PatientID,
		AppointmentID: inv.AppointmentID, Currency: inv.Currency, Subtotal: inv.Subtotal, Tax: inv.Tax, Total: inv.Total,
	})
	if inv.Status == billing.StatusPaid { // a zero-total invoice is paid as it is issued
		q.Emit(m.ClinicID, invoicePaid(inv))
	}
	return inv, nil
}

// RecordPayment records a payment against an invoice.
type RecordPayment struct {
	InvoiceID uuid.UUID
	Request   billing.PaymentRequest
}

// Execute implements actors.Command.
func (c RecordPayment) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (billing.Payment, error) {
	var p billing.Payment
	inv, err := q.UpdateInvoice(ctx, m.ClinicID, c.InvoiceID, func(inv *billing.Invoice) error {
		var err error
		p, err = inv.RecordPayment(c.Request, now())
		return err
	})
	if err != nil {
		return billing.Payment{}, err
	}
	if err := q.InsertPayment(ctx, p); err != nil {
		return billing.Payment{}, err
	}
	q.Emit(m.ClinicID, messaging.PaymentRecorded{
		PaymentID: p.ID, InvoiceID: inv.ID, Amount: p.Amount, Currency: p.Currency, Method: string(p.Method), BalanceDue: inv.BalanceDue,
	})
	if inv.Status == billing.StatusPaid {
		q.Emit(m.ClinicID, invoicePaid(inv))
	}
	return p, nil
}

// RecordRefund refunds part of a payment.
type RecordRefund struct {
	PaymentID uuid.UUID
	Request   billing.RefundRequest
}

// Execute implements actors.Command.
func (c RecordRefund) Execute(ctx context.Context, q *store.Queries, m actors.Meta) (billing.Refund, error) {
	invoiceID, err := q.PaymentInvoice(ctx, m.ClinicID, c.PaymentID)
	if err != nil {
		return billing.Refund{}, err
	}
	var r billing.Refund
	// Lock order: the invoice, then the payment.
	inv, err := q.UpdateInvoice(ctx, m.ClinicID, invoiceID, func(inv *billing.Invoice) error {
		return q.UpdatePayment(ctx, m.ClinicID, c.PaymentID, func(p *billing.Payment) error {
			var err error
			r, err = inv.Refund(p, c.Request, now())
			return err
		})
	})
	if err != nil {
		return billing.Refund{}, err
	}
	if err := q.InsertRefund(ctx, r); err != nil {
		return billing.Refund{}, err
	}
	q.Emit(m.ClinicID, messaging.RefundRecorded{
		RefundID: r.ID, PaymentID: r.PaymentID, InvoiceID: inv.ID, Amount: r.Amount, Currency: r.Currency, BalanceDue: inv.BalanceDue,
	})
	return r, nil
}

func invoicePaid(inv billing.Invoice) messaging.InvoicePaid {
	return messaging.InvoicePaid{InvoiceID: inv.ID, Total: inv.Total, AmountPaid: inv.AmountPaid,
		AmountRefunded: inv.AmountRefunded, Currency: inv.Currency}
}
