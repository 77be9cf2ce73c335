package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/hector-run/hector/internal/apps"
	"github.com/hector-run/hector/internal/config/source"
	"github.com/hector-run/hector/internal/reload"
)

// appsAvailable answers 404 when this server runs no apps registry (its
// configuration source keeps no app documents: a layered --config).
func (s *Server) appsAvailable(w http.ResponseWriter) bool {
	if s.Apps != nil {
		return true
	}
	writeError(w, http.StatusNotFound, "apps_unavailable",
		"this server keeps no apps: its configuration source has no place for app documents (layered --config files)")
	return false
}

// appInfo is an app as GET /admin/apps lists it.
type appInfo struct {
	Name    string `json:"name"`
	Status  string `json:"status"` // serving, or invalid: no valid document applied yet
	Version int64  `json:"version,omitempty"`
	Hash    string `json:"hash,omitempty"`
	Source  string `json:"source"`
	Agents  int    `json:"agents"`
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	if !s.appsAvailable(w) {
		return
	}
	out := []appInfo{}
	for _, a := range s.Apps.List() {
		info := appInfo{Name: a.Name, Status: "invalid", Source: a.Reconciler.Source.Name()}
		if snap := a.Runtime.Current(); snap != nil {
			info.Status, info.Version, info.Hash, info.Agents = "serving", snap.Version, a.Reconciler.PublicHash(snap.Hash), len(snap.Agents)
		}
		out = append(out, info)
	}
	writeJSON(w, http.StatusOK, map[string]any{"apps": out, "catalog": s.Apps.Catalog.Name()})
}

// createRequest is the body of POST /admin/apps: the app's name and its
// document, as YAML or JSON text, or as a JSON object.
type createRequest struct {
	Name   string          `json:"name"`
	Config json.RawMessage `json:"config"`
}

// document returns the app's document: the text of a JSON string, or
// the JSON object itself.
func (c createRequest) document() ([]byte, error) {
	var text string
	switch {
	case len(c.Config) == 0 || string(c.Config) == "null":
		return nil, errors.New(`field "config" is required: the app's document, as YAML or JSON text or a JSON object`)
	case json.Unmarshal(c.Config, &text) == nil:
		return []byte(text), nil
	case c.Config[0] == '{':
		return c.Config, nil
	}
	return nil, errors.New(`field "config" must be a string (YAML or JSON text) or a JSON object`)
}

// createApp validates and stores a new app's document in the catalog and
// starts the app: 201 with the outcome when applied, 422 when the
// document is rejected (nothing is stored), 409 when the app exists.
func (s *Server) createApp(w http.ResponseWriter, r *http.Request) {
	if !s.appsAvailable(w) {
		return
	}
	var req createRequest
	if !decodeBody(w, r, &req) {
		return
	}
	if err := source.CheckAppName(req.Name); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_name", `field "name": `+err.Error())
		return
	}
	doc, err := req.document()
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_body", err.Error())
		return
	}
	o, err := s.Apps.Create(r.Context(), req.Name, doc, reload.TriggerAPI, actor(r))
	switch {
	case errors.Is(err, apps.ErrExists):
		writeError(w, http.StatusConflict, "app_exists", fmt.Sprintf("app %q exists; change it with PUT /admin/apps/%s", req.Name, req.Name))
		return
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	a := s.Apps.Get(req.Name)
	if o.Result == reload.Rejected || a == nil {
		writeJSON(w, http.StatusUnprocessableEntity, o)
		return
	}
	o = a.Reconciler.Public(o)
	w.Header().Set("Location", "/admin/apps/"+req.Name)
	if snap := a.Runtime.Current(); snap != nil {
		w.Header().Set("ETag", etag(a.Reconciler.PublicHash(snap.Hash)))
	}
	writeJSON(w, http.StatusCreated, o)
}

// deleteApp removes an app's document and stops the app (requests in
// flight finish); ?purge=true also deletes its sessions, tasks and
// history, which are kept otherwise.
func (s *Server) deleteApp(w http.ResponseWriter, r *http.Request) {
	if !s.appsAvailable(w) {
		return
	}
	name := r.PathValue("app")
	purge := false
	if v := r.URL.Query().Get("purge"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_parameter", `parameter "purge" must be true or false`)
			return
		}
		purge = b
	}
	switch err := s.Apps.Delete(r.Context(), name, purge); {
	case errors.Is(err, apps.ErrNotFound):
		writeError(w, http.StatusNotFound, "app_not_found", fmt.Sprintf("no app named %q", name))
	case err != nil:
		writeError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		writeJSON(w, http.StatusOK, map[string]any{"deleted": name, "purged": purge})
	}
}
