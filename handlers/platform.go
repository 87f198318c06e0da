package handlers

import (
	"github.com/google/uuid"

	"github.com/aura-clinic/aura/actors/commands"
	"github.com/aura-clinic/aura/actors/platform"
)

func (s *Server) createAPIKey(c *call) (reply, error) {
	var cmd commands.CreateAPIKey
	if err := c.decode(&cmd); err != nil {
		return reply{}, err
	}
	key, err := execute(c, s.exec, cmd)
	if err != nil {
		return reply{}, err
	}
	return created(key, ""), nil
}

func (s *Server) listAPIKeys(c *call) (reply, error) {
	page, err := c.page()
	if err != nil {
		return reply{}, err
	}
	list, err := s.queries.ListAPIKeys(c.ctx, c.user.ID, page)
	if err != nil {
		return reply{}, err
	}
	return listReply(list, func(k platform.APIKey) uuid.UUID { return k.ID }), nil
}

func (s *Server) revokeAPIKey(c *call) (reply, error) {
	id, err := c.pathID("key_id", platform.ErrAPIKeyNotFound)
	if err != nil {
		return reply{}, err
	}
	if _, err := execute(c, s.exec, commands.RevokeAPIKey{KeyID: id}); err != nil {
		return reply{}, err
	}
	return reply{status: 204}, nil
}

func (s *Server) createClinic(c *call) (reply, error) {
	var cmd commands.CreateClinic
	if err := c.decode(&cmd); err != nil {
		return reply{}, err
	}
	clinic, err := execute(c, s.exec, cmd)
	if err != nil {
		return reply{}, err
	}
	return created(clinic, "/v1/clinics/"+clinic.ID.String()), nil
}

func (s *Server) listClinics(c *call) (reply, error) {
	page, err := c.page()
	if err != nil {
		return reply{}, err
	}
	list, err := s.queries.ListClinics(c.ctx, c.user.ID, page)
	if err != nil {
		return reply{}, err
	}
	return listReply(list, func(m platform.ClinicMembership) uuid.UUID { return m.ID }), nil
}

func (s *Server) getClinic(c *call) (reply, error) { return ok(c.clinic), nil }

func (s *Server) addMember(c *call) (reply, error) {
	cmd := commands.AddMember{}
	if err := c.decode(&cmd); err != nil {
		return reply{}, err
	}
	cmd.GranterRole = c.clinic.Role
	m, err := execute(c, s.clinics, cmd)
	if err != nil {
		return reply{}, err
	}
	return created(m, ""), nil
}

func (s *Server) listMembers(c *call) (reply, error) {
	page, err := c.page()
	if err != nil {
		return reply{}, err
	}
	list, err := s.queries.ListMembers(c.ctx, c.clinic.ID, page)
	if err != nil {
		return reply{}, err
	}
	return listReply(list, func(m platform.Member) uuid.UUID { return m.UserID }), nil
}
