package handlers

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/billing"
	"github.com/aura-clinic/aura/actors/commands"
	"github.com/aura-clinic/aura/schema/store"
)

func (s *Server) issueInvoice(c *call) (reply, error) {
	loc, err := time.LoadLocation(c.clinic.Timezone)
	if err != nil {
		return reply{}, err
	}
	cmd := commands.IssueInvoice{Currency: c.clinic.Currency, Timezone: loc}
	if cmd.Request, err = c.decodeInvoice(); err != nil {
		return reply{}, err
	}
	inv, err := execute(c, s.clinics, cmd)
	if err != nil {
		return reply{}, err
	}
	return created(inv, "/v1/clinics/"+inv.ClinicID.String()+"/invoices/"+inv.ID.String()), nil
}

func (s *Server) listInvoices(c *call) (reply, error) {
	page, err := c.page()
	if err != nil {
		return reply{}, err
	}
	q := c.query()
	f := store.InvoiceFilter{PatientID: q.id("patient_id")}
	if st := q.get("status"); st != "" {
		var known bool
		if f.Status, known = billing.ParseInvoiceStatus(st); !known {
			q.fail("status", "must be issued or paid")
		}
	}
	if err := q.err(); err != nil {
		return reply{}, err
	}
	list, err := s.queries.ListInvoices(c.ctx, c.clinic.ID, f, page)
	if err != nil {
		return reply{}, err
	}
	return listReply(list, func(inv billing.Invoice) uuid.UUID { return inv.ID }), nil
}

func (s *Server) getInvoice(c *call) (reply, error) {
	id, err := c.pathID("invoice_id", billing.ErrInvoiceNotFound)
	if err != nil {
		return reply{}, err
	}
	inv, err := s.queries.Invoice(c.ctx, c.clinic.ID, id)
	if err != nil {
		return reply{}, err
	}
	return ok(inv), nil
}

func paymentPath(p billing.Payment) string {
	return "/v1/clinics/" + p.ClinicID.String() + "/payments/" + p.ID.String()
}

func (s *Server) recordPayment(c *call) (reply, error) {
	cmd := commands.RecordPayment{}
	var err error
	if cmd.InvoiceID, err = c.pathID("invoice_id", billing.ErrInvoiceNotFound); err != nil {
		return reply{}, err
	}
	if err := c.decode(&cmd.Request); err != nil {
		return reply{}, err
	}
	p, err := execute(c, s.clinics, cmd)
	if err != nil {
		return reply{}, err
	}
	return created(p, paymentPath(p)), nil
}

func (s *Server) getPayment(c *call) (reply, error) {
	id, err := c.pathID("payment_id", billing.ErrPaymentNotFound)
	if err != nil {
		return reply{}, err
	}
	p, err := s.queries.Payment(c.ctx, c.clinic.ID, id)
	if err != nil {
		return reply{}, err
	}
	return ok(p), nil
}

func (s *Server) recordRefund(c *call) (reply, error) {
	cmd := commands.RecordRefund{}
	var err error
	if cmd.PaymentID, err = c.pathID("payment_id", billing.ErrPaymentNotFound); err != nil {
		return reply{}, err
	}
	if err := c.decode(&cmd.Request); err != nil {
		return reply{}, err
	}
	r, err := execute(c, s.clinics, cmd)
	if err != nil {
		return reply{}, err
	}
	return created(r, ""), nil
}

// decodeInvoice decodes an invoice request line by line, so that an error in
// a line points at it (/lines/2/quantity): encoding/json's errors name no
// array index.
func (c *call) decodeInvoice() (billing.InvoiceRequest, error) {
	var wire struct {
		PatientID     string            `json:"patient_id"`
		AppointmentID *string           `json:"appointment_id"`
		Lines         []json.RawMessage `json:"lines"`
	}
	if err := c.decode(&wire); err != nil {
		return billing.InvoiceRequest{}, err
	}
	req := billing.InvoiceRequest{PatientID: wire.PatientID, AppointmentID: wire.AppointmentID,
		Lines: make([]billing.LineRequest, len(wire.Lines))}
	for i, raw := range wire.Lines {
		if err := decodeStrict(raw, &req.Lines[i], fmt.Sprintf("/lines/%d", i)); err != nil {
			return billing.InvoiceRequest{}, err
		}
	}
	return req, nil
}
