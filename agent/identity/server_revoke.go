package identity

import (
	"fmt"
	"net/http"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/pki"
)

// serveRevoke answers POST /v1/cluster/revoke (admin): the node's
// certificates issued until now are refused by every voter's TLS (see
// Record.Revoked) and cannot be renewed. An agent that still runs there
// can no longer reach the control plane; it joins again with a token and
// an empty data dir.
func (s *Server) serveRevoke(w http.ResponseWriter, r *http.Request) {
	var req RevokeRequest
	if _, ok := s.adminRequest(w, r, &req); !ok {
		return
	}
	if err := pki.CheckNodeName(req.Node); err != nil {
		writeStatus(w, api.NewBadRequest("node: %v", err))
		return
	}
	var err error
	for range maxRotateAttempts {
		rec, _, se := s.opened(r.Context())
		if se != nil {
			writeStatus(w, se)
			return
		}
		if len(rec.RevokedNodes) >= maxRevokedNodes {
			if _, again := rec.RevokedNodes[req.Node]; !again {
				writeStatus(w, api.NewStatusError(http.StatusConflict, api.ReasonConflict, nil,
					"the record already names %d revoked nodes, the most it holds", maxRevokedNodes))
				return
			}
		}
		now := s.now()
		next := rec.Clone()
		next.Revoke(req.Node, now)
		if err = s.cluster.Update(r.Context(), rec, next); err == nil {
			s.log.Warn("identity: node revoked", "node", req.Node)
			writeJSON(w, http.StatusOK, RevokeResponse{Node: req.Node, RevokedAt: next.RevokedNodes[req.Node]})
			return
		}
		if r.Context().Err() != nil {
			break
		}
	}
	writeStatus(w, api.NewServiceUnavailable(fmt.Sprintf("revoking node %q: %v; retry", req.Node, err)))
}
