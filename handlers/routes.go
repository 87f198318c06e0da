package handlers

import (
	"github.com/aura-clinic/aura/actors/platform"
)

// routes is the API: every operation, who may call it, and its endpoint.
func (s *Server) routes() []route {
	const clinic = "/v1/clinics/{clinic_id}"
	return []route{
		get("/healthz", public, s.healthz),
		get("/readyz", public, s.readyz),
		get("/openapi.json", public, s.openAPIJSON),
		get("/openapi.yaml", public, s.openAPIYAML),
		get("/docs", public, s.docsPage),
		get("/docs/assets/{file}", public, s.docsAsset),

		post("/v1/api-keys", signedIn, s.createAPIKey),
		get("/v1/api-keys", signedIn, s.listAPIKeys),
		del("/v1/api-keys/{key_id}", signedIn, s.revokeAPIKey),

		post("/v1/clinics", signedIn, s.createClinic),
		get("/v1/clinics", signedIn, s.listClinics),
		get(clinic, member(platform.ReadClinic), s.getClinic),

		post(clinic+"/members", member(platform.ManageMembers), s.addMember),
		get(clinic+"/members", member(platform.ReadClinic), s.listMembers),

		post(clinic+"/patients", member(platform.WritePatients), s.createPatient),
		get(clinic+"/patients", member(platform.ReadPatients), s.listPatients),
		get(clinic+"/patients/{patient_id}", member(platform.ReadPatients), s.getPatient),
		patch(clinic+"/patients/{patient_id}", member(platform.WritePatients), s.updatePatient),

		post(clinic+"/appointments", member(platform.WriteAppointments), s.bookAppointment),
		get(clinic+"/appointments", member(platform.ReadAppointments), s.listAppointments),
		get(clinic+"/appointments/{appointment_id}", member(platform.ReadAppointments), s.getAppointment),
		post(clinic+"/appointments/{appointment_id}/cancel", member(platform.WriteAppointments), s.cancelAppointment),
		post(clinic+"/appointments/{appointment_id}/complete", member(platform.WriteAppointments), s.completeAppointment),

		post(clinic+"/invoices", member(platform.WriteBilling), s.issueInvoice),
		get(clinic+"/invoices", member(platform.ReadBilling), s.listInvoices),
		get(clinic+"/invoices/{invoice_id}", member(platform.ReadBilling), s.getInvoice),
		post(clinic+"/invoices/{invoice_id}/payments", member(platform.WriteBilling), s.recordPayment).payments(),
		get(clinic+"/payments/{payment_id}", member(platform.ReadBilling), s.getPayment),
		post(clinic+"/payments/{payment_id}/refunds", member(platform.WriteBilling), s.recordRefund).payments(),

		get(clinic+"/events", member(platform.ReadClinic), s.listEvents),
		get(clinic+"/events/stream", member(platform.ReadClinic), s.streamEvents).stream(),
	}
}
