package handlers

import (
	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/commands"
	"github.com/aura-clinic/aura/actors/crm"
)

func patientPath(p crm.Patient) string {
	return "/v1/clinics/" + p.ClinicID.String() + "/patients/" + p.ID.String()
}

func (s *Server) createPatient(c *call) (reply, error) {
	var cmd commands.CreatePatient
	if err := c.decode(&cmd.Fields); err != nil {
		return reply{}, err
	}
	p, err := execute(c, s.clinics, cmd)
	if err != nil {
		return reply{}, err
	}
	return created(p, patientPath(p)), nil
}

func (s *Server) listPatients(c *call) (reply, error) {
	page, err := c.page()
	if err != nil {
		return reply{}, err
	}
	list, err := s.queries.ListPatients(c.ctx, c.clinic.ID, page)
	if err != nil {
		return reply{}, err
	}
	return listReply(list, func(p crm.Patient) uuid.UUID { return p.ID }), nil
}

func (s *Server) getPatient(c *call) (reply, error) {
	id, err := c.pathID("patient_id", crm.ErrPatientNotFound)
	if err != nil {
		return reply{}, err
	}
	p, err := s.queries.Patient(c.ctx, c.clinic.ID, id)
	if err != nil {
		return reply{}, err
	}
	return ok(p), nil
}

func (s *Server) updatePatient(c *call) (reply, error) {
	cmd := commands.UpdatePatient{}
	var err error
	if cmd.PatientID, err = c.pathID("patient_id", crm.ErrPatientNotFound); err != nil {
		return reply{}, err
	}
	if err := c.decode(&cmd.Fields); err != nil {
		return reply{}, err
	}
	p, err := execute(c, s.clinics, cmd)
	if err != nil {
		return reply{}, err
	}
	return ok(p), nil
}
