package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/sitesync"
	"github.com/tandemhq/tandem/internal/store"
)

// SyncBodyMax bounds a sync batch or snapshot (a full sync of 100,000 jobs is some
// tens of MiB).
const SyncBodyMax = 1 << 30

func (s *Server) registerSync(mux *http.ServeMux) {
	s.route(mux, "GET "+sitesync.RouteTarget, auth.Sync, s.handle(s.syncTarget))
	s.route(mux, "POST "+sitesync.RouteBatch, auth.Sync, s.handle(s.syncBatch))
	s.route(mux, "POST "+sitesync.RouteFull, auth.Sync, s.handle(s.syncReceiveFull))
	s.route(mux, "GET /api/v1/sync/status", auth.Viewer, s.handle(s.syncStatus))
	s.route(mux, "POST /api/v1/sync/full", auth.Admin, s.handle(s.syncFull))
	s.route(mux, "POST /api/v1/sync/pause", auth.Operator, s.handle(s.syncPause(true)))
	s.route(mux, "POST /api/v1/sync/resume", auth.Operator, s.handle(s.syncPause(false)))
	s.route(mux, "POST /api/v1/sync/promote", auth.Admin, s.handle(s.syncPromote))
}

// siteSync is the node's sync service (nil: the backend has none).
func (s *Server) siteSync() (*sitesync.Service, error) {
	if b, ok := s.b.(interface{ SiteSync() *sitesync.Service }); ok && b.SiteSync() != nil {
		return b.SiteSync(), nil
	}
	return nil, &statusError{code: http.StatusNotImplemented, field: "sync", msg: "this server does not run the site sync"}
}

// syncErr maps the sync's refusals to 409 with the field the sender branches on.
func syncErr(err error) error {
	var ce *sitesync.ChangeError
	var re *sitesync.RemoteError
	field := ""
	switch {
	case errors.As(err, &re) && re.Status < 500:
		return &statusError{code: re.Status, field: re.Field, msg: err.Error()} // the target refused
	case errors.As(err, &re):
		return &statusError{code: http.StatusBadGateway, field: "target", msg: err.Error()}
	case errors.As(err, &ce):
		return &statusError{code: http.StatusUnprocessableEntity, field: "changes", msg: err.Error()}
	case errors.Is(err, store.ErrConflict):
		field = sitesync.FieldCursor
	case errors.Is(err, store.ErrSyncSource):
		field = sitesync.FieldSource
	case errors.Is(err, store.ErrNotTarget), errors.Is(err, sitesync.ErrIsSource), errors.Is(err, sitesync.ErrNotSource):
		field = sitesync.FieldTarget
	default:
		return err
	}
	return &statusError{code: http.StatusConflict, field: field, msg: err.Error()}
}

func (s *Server) syncTarget(r *http.Request) (int, any, error) {
	svc, err := s.siteSync()
	if err != nil {
		return 0, nil, err
	}
	ts, err := svc.TargetState(r.Context())
	return http.StatusOK, ts, err
}

func decodeSync(r *http.Request, v any) error {
	data, err := readBody(r, SyncBodyMax)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return &badRequest{"body", fmt.Sprintf("decode the sync message: %v", err)}
	}
	return nil
}

func (s *Server) syncBatch(r *http.Request) (int, any, error) {
	svc, err := s.siteSync()
	if err != nil {
		return 0, nil, err
	}
	var b sitesync.Batch
	if err := decodeSync(r, &b); err != nil {
		return 0, nil, err
	}
	ts, err := svc.ApplyBatch(r.Context(), b)
	if err != nil {
		return 0, nil, syncErr(err)
	}
	s.b.JobsChanged()
	return http.StatusOK, ts, nil
}

func (s *Server) syncReceiveFull(r *http.Request) (int, any, error) {
	svc, err := s.siteSync()
	if err != nil {
		return 0, nil, err
	}
	var f sitesync.Full
	if err := decodeSync(r, &f); err != nil {
		return 0, nil, err
	}
	ts, err := svc.ApplyFull(r.Context(), f)
	if err != nil {
		return 0, nil, syncErr(err)
	}
	s.b.JobsChanged()
	return http.StatusOK, ts, nil
}

func (s *Server) syncStatus(r *http.Request) (int, any, error) {
	svc, err := s.siteSync()
	if err != nil {
		return 0, nil, err
	}
	st, err := svc.Status(r.Context())
	return http.StatusOK, st, err
}

func (s *Server) syncFull(r *http.Request) (int, any, error) {
	svc, err := s.siteSync()
	if err != nil {
		return 0, nil, err
	}
	res, err := svc.FullSync(r.Context())
	if err != nil {
		if m := syncErr(err); m != err {
			return 0, nil, m
		}
		return 0, nil, &statusError{code: http.StatusBadGateway, field: "target", msg: err.Error()}
	}
	return http.StatusOK, res, nil
}

func (s *Server) syncPause(pause bool) handler {
	return func(r *http.Request) (int, any, error) {
		svc, err := s.siteSync()
		if err != nil {
			return 0, nil, err
		}
		if pause {
			err = svc.Pause(r.Context(), principalOf(r).Name)
		} else {
			err = svc.Resume(r.Context(), principalOf(r).Name)
		}
		if err != nil {
			return 0, nil, syncErr(err)
		}
		st, err := svc.Status(r.Context())
		return http.StatusOK, st, err
	}
}

func (s *Server) syncPromote(r *http.Request) (int, any, error) {
	svc, err := s.siteSync()
	if err != nil {
		return 0, nil, err
	}
	res, err := svc.Promote(r.Context(), s.audit(r))
	if err != nil {
		return 0, nil, syncErr(err)
	}
	s.b.JobsChanged()
	return http.StatusOK, res, nil
}
