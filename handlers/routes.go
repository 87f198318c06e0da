package handlers

import (
	"net/http"

	"github.com/aura-clinic/aura/actors/platform"
)

// routes is the API: every operation, who may call it, and its endpoint.
func (s *Server) routes() []route {
	const clinic = "/v1/clinics/{clinic_id}"
	return []route{
		{http.MethodGet, "/healthz", public, s.healthz},
		{http.MethodGet, "/readyz", public, s.readyz},

		{http.MethodPost, "/v1/api-keys", signedIn, s.createAPIKey},
		{http.MethodGet, "/v1/api-keys", signedIn, s.listAPIKeys},
		{http.MethodDelete, "/v1/api-keys/{key_id}", signedIn, s.revokeAPIKey},

		{http.MethodPost, "/v1/clinics", signedIn, s.createClinic},
		{http.MethodGet, "/v1/clinics", signedIn, s.listClinics},
		{http.MethodGet, clinic, member(platform.ReadClinic), s.getClinic},

		{http.MethodPost, clinic + "/members", member(platform.ManageMembers), s.addMember},
		{http.MethodGet, clinic + "/members", member(platform.ReadClinic), s.listMembers},

		{http.MethodPost, clinic + "/patients", member(platform.WritePatients), s.createPatient},
		{http.MethodGet, clinic + "/patients", member(platform.ReadPatients), s.listPatients},
		{http.MethodGet, clinic + "/patients/{patient_id}", member(platform.ReadPatients), s.getPatient},
		{http.MethodPatch, clinic + "/patients/{patient_id}", member(platform.WritePatients), s.updatePatient},
	}
}
