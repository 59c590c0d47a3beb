package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/shoal-dev/shoal/api"
	"github.com/shoal-dev/shoal/consensus/store"
)

// notLeader is implemented by the error a follower's Backend returns for a
// write (consensus.ErrNotLeader): LeaderAddress is the leader's API address,
// or "" when there is no leader.
type notLeader interface {
	error
	LeaderAddress() string
}

// outcomeUnknown is implemented by the error of a proposal that may or may
// not have committed (consensus.ErrOutcomeUnknown).
type outcomeUnknown interface {
	error
	OutcomeUnknown() bool
}

// conflictMessage is the Kubernetes wording of a stale resourceVersion.
const conflictMessage = "the object has been modified; please apply your changes to the latest version and try again"

// ToStatus maps any error of a request to the Status sent back. info and
// name say which object the request was about, for the message.
func (s *Server) ToStatus(err error, info api.KindInfo, name string) *api.StatusError {
	var se *api.StatusError
	if errors.As(err, &se) {
		return se
	}
	var nl notLeader
	var ou outcomeUnknown
	switch {
	case errors.As(err, &ou) && ou.OutcomeUnknown():
		return api.NewTimeout(fmt.Sprintf("the write's outcome is unknown (it may have been applied): read the object before writing it again: %v", err))
	case errors.Is(err, store.ErrNotFound):
		return api.NewNotFound(info, name)
	case errors.Is(err, store.ErrAlreadyExists):
		return api.NewAlreadyExists(info, name)
	case errors.Is(err, store.ErrConflict):
		return api.NewConflict(info, name, conflictMessage)
	case errors.Is(err, store.ErrTooOld):
		return api.NewGone(err.Error())
	case errors.Is(err, store.ErrInvalid):
		return api.NewBadRequest("%v", err)
	case errors.As(err, &nl):
		if addr := nl.LeaderAddress(); addr != "" {
			return api.NewServiceUnavailable(fmt.Sprintf("this agent is not the leader; the leader is %s", addr))
		}
		return api.NewServiceUnavailable("the cluster has no leader at the moment; retry shortly")
	case errors.Is(err, context.DeadlineExceeded):
		return api.NewServiceUnavailable(fmt.Sprintf("timed out waiting for the control plane: %v", err))
	case errors.Is(err, context.Canceled):
		return api.NewServiceUnavailable(fmt.Sprintf("request canceled: %v", err))
	}
	return api.NewInternalError(err)
}

// WriteError sends a Status. Server errors are logged; client errors are
// the client's business and only logged at debug level.
func (s *Server) WriteError(w http.ResponseWriter, r *http.Request, se *api.StatusError) {
	st := se.Status()
	if st.Code >= 500 {
		s.log.Error("api request failed", "method", r.Method, "path", r.URL.Path, "code", st.Code, "err", st.Message)
	} else {
		s.log.Debug("api request rejected", "method", r.Method, "path", r.URL.Path, "code", st.Code, "err", st.Message)
	}
	if st.Code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	s.WriteJSON(w, r, int(st.Code), st)
}
