package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/peer"
	"github.com/tandemhq/tandem/internal/store"
)

// forwardedHeader marks a request one node forwarded to another, so it is never
// forwarded twice (two nodes with different views must not bounce it forever).
const forwardedHeader = peer.ForwardedHeader

// requesterHeader carries, on a forwarded request, who asked the forwarding node: the
// operator action records it with the hold it sets.
const requesterHeader = peer.RequesterHeader

// requester names who made a request: the client's address and the node it reached.
// Only a node (a request signed with the cluster secret) may say who asked it.
func (s *Server) requester(r *http.Request) string {
	p := principalOf(r)
	if by := r.Header.Get(requesterHeader); by != "" && r.Header.Get(forwardedHeader) != "" && p.Role == auth.Peer {
		return by
	}
	return fmt.Sprintf("%s from %s via node %s", p.Name, r.RemoteAddr, s.b.NodeID())
}

var errUnreachable = errors.New("node unreachable")

// switchBodyMax bounds the body of a switch request.
const switchBodyMax = 1 << 16

// parseSwitchRequest reads {"to": NODE} (or nothing: the best standby).
func parseSwitchRequest(body []byte) (SwitchRequest, error) {
	var req SwitchRequest
	if len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	var te *json.UnmarshalTypeError
	switch err := dec.Decode(&req); {
	case errors.As(err, &te) && te.Field == "to":
		return req, &badRequest{"to", fmt.Sprintf("to must be a node id (a JSON string), got a JSON %s", te.Value)}
	case err != nil:
		return req, &badRequest{"body", `want {"to": NODE} or nothing (the best standby), got ` + strconv.Quote(short(body, 100))}
	case dec.More():
		return req, &badRequest{"body", `want one {"to": NODE}, got more after it`}
	}
	return req, nil
}

func short(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// switchover performs a planned handover on the primary; any node accepts the request
// and forwards it to the primary.
func (s *Server) switchover(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r, switchBodyMax)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := parseSwitchRequest(body)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	st, err := s.b.Status(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if st.Primary == "" {
		s.writeError(w, r, fmt.Errorf("no primary to switch from: %w", store.ErrConflict))
		return
	}
	if st.Primary != s.b.NodeID() {
		s.forward(w, r, st.Primary, body)
		return
	}
	to, err := s.b.Switch(r.Context(), req.To)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, SwitchResult{From: s.b.NodeID(), To: to})
}

// nodeAction performs an operator action on a node; any node accepts it and forwards it
// to the node named.
func (s *Server) nodeAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if id != s.b.NodeID() {
			s.forward(w, r, id, nil)
			return
		}
		mode, err := s.b.NodeAction(r.Context(), action, s.requester(r))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, NodeActionResult{Node: id, Action: action, Mode: mode})
	}
}

// nodeWeight sets a node's load-balancing weight; any node accepts it and forwards it
// to the node named, which stores it.
func (s *Server) nodeWeight(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
	if err != nil {
		s.writeError(w, r, &badRequest{"body", "read request: " + err.Error()})
		return
	}
	var req WeightRequest
	if err := json.Unmarshal(body, &req); err != nil {
		s.writeError(w, r, &badRequest{"weight", "want {\"weight\": NUMBER}: " + err.Error()})
		return
	}
	if !(req.Weight > 0 && req.Weight <= 1e6) {
		s.writeError(w, r, &badRequest{"weight", fmt.Sprintf("must be a number above 0 and at most 1e6, got %g", req.Weight)})
		return
	}
	if id != s.b.NodeID() {
		s.forward(w, r, id, body)
		return
	}
	if err := s.b.NodeWeight(r.Context(), req.Weight, s.requester(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, WeightResult{Node: id, Weight: req.Weight})
}

// forward sends the request to node id and relays its answer.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, id string, body []byte) {
	if by := r.Header.Get(forwardedHeader); by != "" {
		s.writeError(w, r, fmt.Errorf("request for node %s forwarded by %s reached %s: the nodes disagree on who is where; retry: %w", id, by, s.b.NodeID(), store.ErrConflict))
		return
	}
	addr := s.b.NodeAddress(r.Context(), id)
	if addr == "" {
		s.writeError(w, r, fmt.Errorf("node %s: %w", id, store.ErrNotFound))
		return
	}
	resp, err := s.peer.Forward(r.Context(), addr, r, body, s.b.NodeID(), s.requester(r))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("forward to node %s at %s: %v: %w", id, addr, err, errUnreachable))
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}
