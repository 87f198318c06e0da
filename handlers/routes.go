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
	}
}
