package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/shoal-dev/shoal/api"
)

// VoterAdmin changes the Raft configuration by hand (`shoal raft
// add-voter|remove`); the agent provides it. Each change passes the voter
// manager's quorum check first (a refusal is an *api.StatusError saying
// why), and the answer says what the voter manager will do next.
type VoterAdmin interface {
	AddVoter(ctx context.Context, id, addr string) (next string, err error)
	RemoveServer(ctx context.Context, id string) (next string, err error)
}

// VoterChangeAnswer is the answer to a manual voter change.
type VoterChangeAnswer struct {
	// Next says in a sentence what the voter manager will do next.
	Next string `json:"next"`
	// Raft is the leader's view after the change.
	Raft any `json:"raft,omitempty"`
}

// voterRequest is the body of POST /v1/cluster/raft/voters.
type voterRequest struct {
	ID      string `json:"id"`
	Address string `json:"address"`
}

// maxVoterBody bounds the small JSON body of a voter change.
const maxVoterBody = 4 << 10

// serveVoters handles POST /v1/cluster/raft/voters (add a voter) and
// DELETE /v1/cluster/raft/voters/{id} (remove a server). Only the leader
// changes the configuration; elsewhere the answer is 503 naming the leader.
func (s *Server) serveVoters(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Voters == nil {
		s.WriteError(w, r, api.NewStatusError(http.StatusNotFound, api.ReasonNotFound, nil,
			"voter changes are not available on this agent"))
		return
	}
	ctx, cancel := s.requestContext(r)
	defer cancel()
	id := strings.TrimPrefix(r.URL.Path, "/v1/cluster/raft/voters")
	id = strings.TrimPrefix(id, "/")
	var ans VoterChangeAnswer
	switch {
	case r.Method == http.MethodPost && id == "":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxVoterBody+1))
		if err != nil {
			s.WriteError(w, r, api.NewBadRequest("reading the body: %v", err))
			return
		}
		if len(body) > maxVoterBody {
			s.WriteError(w, r, api.NewStatusError(http.StatusRequestEntityTooLarge, api.ReasonRequestEntityTooLarge, nil,
				"the body is larger than %d bytes", maxVoterBody))
			return
		}
		var req voterRequest
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			s.WriteError(w, r, api.NewBadRequest("the body must be {\"id\": NAME, \"address\": HOST:PORT}: %v", err))
			return
		}
		if req.ID == "" {
			s.WriteError(w, r, api.NewBadRequest("id: Required value"))
			return
		}
		if _, _, err := net.SplitHostPort(req.Address); err != nil {
			s.WriteError(w, r, api.NewBadRequest("address: Invalid value: %q: %v", req.Address, err))
			return
		}
		if ans.Next, err = s.cfg.Voters.AddVoter(ctx, req.ID, req.Address); err != nil {
			s.WriteError(w, r, s.ToStatus(err, api.KindInfo{}, req.ID))
			return
		}
	case r.Method == http.MethodDelete && id != "" && !strings.Contains(id, "/"):
		var err error
		if ans.Next, err = s.cfg.Voters.RemoveServer(ctx, id); err != nil {
			s.WriteError(w, r, s.ToStatus(err, api.KindInfo{}, id))
			return
		}
	default:
		s.MethodNotAllowed(w, r, "POST /v1/cluster/raft/voters, DELETE /v1/cluster/raft/voters/{id}")
		return
	}
	if s.cfg.Status != nil {
		ans.Raft = s.cfg.Status()
	}
	s.WriteJSON(w, r, http.StatusOK, ans)
}
