package apiserver

import (
	"net/http"
	"slices"
	"strings"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/gossip"
)

// MemberView is one gossip member as /v1/cluster/members shows it: the
// wire type the client reads, defined once in api.
type MemberView = api.MemberInfo

// MembersResponse is the body of /v1/cluster/members.
type MembersResponse struct {
	Members []MemberView `json:"members"`
}

// MembersView turns the gossip member table into the body of
// /v1/cluster/members, sorted by name. Give it as ServerConfig.Members:
//
//	Members: func() any { return agent.MembersView(g.Members()) }
func MembersView(ms []gossip.Member) any {
	out := MembersResponse{Members: make([]MemberView, 0, len(ms))}
	for _, m := range ms {
		out.Members = append(out.Members, MemberView{
			Name:      m.Name,
			Address:   m.Address(),
			APIAddr:   m.Meta.APIAddr,
			RaftAddr:  m.Meta.RaftAddr,
			Zone:      m.Meta.Zone,
			Status:    m.State.String(),
			Role:      m.Meta.Role,
			ClusterID: m.Meta.ClusterID,
			Version:   m.Meta.Version,
			Leaving:   m.Meta.Leaving,
			Since:     m.Since.UTC(),
			MetaError: m.MetaErr,
		})
	}
	slices.SortFunc(out.Members, func(a, b MemberView) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (s *Server) serveMembers(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.MethodNotAllowed(w, r, "GET")
		return
	}
	if s.cfg.Members == nil {
		s.WriteError(w, r, api.NewStatusError(http.StatusNotFound, api.ReasonNotFound, nil,
			"the member list is not available on this agent"))
		return
	}
	s.WriteJSON(w, r, http.StatusOK, s.cfg.Members())
}
