package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/introreg/nir/projections"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
	"github.com/introreg/nir/rules"
)

// The operator's page: the read models' state (AdminService.ProjectionStatus), a rebuild and
// snapshots. A rebuild or a replay reads the whole stream, so it runs as the console's job
// (it outlives the request that started it) and the page follows its progress.

type adminData struct {
	LastSeq      uint64
	Lag          uint64
	FileSize     string
	Applied      uint64
	ApplySeconds string
	Rebuilding   bool
	Quarantined  uint64
	Models       []*nirv1.ModelStatus
	Snapshots    []snapshotView
	Job          *jobView
	NextName     string
	NextCutoff   string
	Message      string
	Error        string
}

type snapshotView struct {
	Name, Cutoff, Checkpoint, Size string
	Empty                          bool
	// ProvisionalUntil, when set, is when a snapshot made before its cut-off had settled
	// could be made again with the final figures.
	ProvisionalUntil string
}

type jobView struct {
	Title, By, Started, Text, Result, Error string
	Running                                 bool
	Done, Total                             uint64
}

// adminMessages are the messages after an operator's action, by the "melding" parameter.
var adminMessages = map[string]string{
	"gjenoppbygging": "Gjenoppbyggingen er startet.",
	"snapshot":       "Øyeblikksbildet lages.",
	"slettet":        "Øyeblikksbildet er slettet.",
}

func (c *Console) adminPage(w http.ResponseWriter, r *http.Request) {
	st, err := call(c, r.Context(), nirv1connect.AdminServiceProjectionStatusProcedure, c.admin.ProjectionStatus, &nirv1.ProjectionStatusRequest{})
	if err != nil {
		c.apiError(w, r, err)
		return
	}
	// The suggested snapshot: the official figures of the latest data year whose deadline
	// has passed (DOMAIN.md Product decisions 7).
	today := c.today()
	y := today.Y - 2
	if today.After(rules.LastDayOfFebruary(today.Y)) {
		y = today.Y - 1
	}
	deadline, _ := rules.ReportingDeadline(y)
	d := &adminData{
		LastSeq: st.GetLastSequence(), Lag: st.GetLag(), FileSize: byteSize(st.GetFileSize()), Applied: st.GetEventsApplied(),
		ApplySeconds: decimal(float64(int(st.GetApplySeconds()*10)) / 10), Rebuilding: st.GetRebuilding(), Models: st.GetModels(),
		NextName: fmt.Sprintf("%d@%s", y, deadline), NextCutoff: deadline.String(),
		Message: adminMessages[r.URL.Query().Get("melding")], Error: r.URL.Query().Get("feil"),
		Quarantined: st.GetQuarantinedTotal(),
	}
	if d.Error != "" {
		d.Error = adminErrors[d.Error]
	}
	for _, s := range st.GetSnapshots() {
		v := snapshotView{Name: s.GetName(), Checkpoint: number(int64(s.GetCheckpoint())), Size: byteSize(s.GetFileSize()), Empty: s.GetCheckpoint() == 0}
		if t := s.GetRecordedUntil(); t != nil {
			v.Cutoff = t.AsTime().In(c.loc).Format("02.01.2006 kl. 15:04:05")
		} else {
			v.Cutoff = "ikke registrert"
		}
		if t := s.GetProvisionalUntil(); t != nil {
			v.ProvisionalUntil = t.AsTime().In(c.loc).Format("02.01.2006 kl. 15:04:05")
		}
		d.Snapshots = append(d.Snapshots, v)
	}
	if js, ok := c.jobs.latest(); ok {
		d.Job = c.jobView(js)
	}
	c.render(w, r, http.StatusOK, "admin", c.view(r, "Drift", d))
}

// adminErrors are the errors an action reports back to the page, by the "feil" parameter.
var adminErrors = map[string]string{
	"jobb":      "En gjenoppbygging eller et øyeblikksbilde pågår allerede. Vent til den er ferdig.",
	"navn":      "Navnet kan bare ha bokstaver, sifre og @ . _ - (for eksempel 2024@2025-02-28).",
	"dato":      "Avskjæringsdatoen må være en dato (ÅÅÅÅ-MM-DD).",
	"finnes":    "Et øyeblikksbilde med det navnet finnes. Kryss av for å erstatte det, eller velg et annet navn.",
	"ukjent":    "Fant ikke øyeblikksbildet.",
	"avslutter": "Konsollet avslutter.",
}

func (c *Console) jobView(js jobState) *jobView {
	v := &jobView{Title: js.Title, By: js.By, Started: js.Started.In(c.loc).Format("02.01.2006 kl. 15:04:05"), Running: js.Running, Result: js.Result}
	if js.Err != nil {
		v.Error = jobError(js.Err)
	}
	if pr := js.Progress; pr != nil {
		v.Done, v.Total = pr.Done, pr.Total
		v.Text = progressText(*pr)
	} else if js.Running {
		v.Text = "Starter …"
	}
	if !js.Running {
		v.Text = fmt.Sprintf("Ferdig %s.", js.Finished.In(c.loc).Format("15:04:05"))
	}
	return v
}

// progressText describes a rebuild's or replay's progress in Norwegian.
func progressText(pr projections.Progress) string {
	what := "hendelser lagret"
	if pr.Phase == projections.PhaseFold {
		what = "personer foldet"
	}
	pct := 0.0
	if pr.Total > 0 {
		pct = float64(pr.Done) / float64(pr.Total)
	}
	s := fmt.Sprintf("%s av %s %s (%s)", number(int64(pr.Done)), number(int64(pr.Total)), what, percent(pct))
	if pr.Rate > 0 {
		s += fmt.Sprintf(", %s per sekund", number(int64(pr.Rate)))
	}
	if pr.ETA > 0 {
		s += fmt.Sprintf(", om lag %s igjen", pr.ETA.Round(time.Second))
	}
	return s
}

func jobError(err error) string {
	switch connect.CodeOf(err) {
	case connect.CodeAlreadyExists:
		return adminErrors["finnes"]
	case connect.CodeFailedPrecondition:
		return "Kan ikke utføres nå: " + connectMessage(err)
	case connect.CodeCanceled:
		return "Avbrutt (nird ble stoppet)."
	}
	return "Feilet. Feilen er logget."
}

func connectMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return decimal(float64(n*10/(1<<30))/10) + " GiB"
	case n >= 1<<20:
		return decimal(float64(n*10/(1<<20))/10) + " MiB"
	case n >= 1<<10:
		return decimal(float64(n*10/(1<<10))/10) + " KiB"
	}
	return fmt.Sprintf("%d B", n)
}

func (c *Console) adminRedirect(w http.ResponseWriter, r *http.Request, key, value string) {
	http.Redirect(w, r, "/drift?"+url.Values{key: {value}}.Encode(), http.StatusSeeOther)
}

// startJob starts fn as the console's job and sends the browser back to the page, with a
// message that it started or why it did not.
func (c *Console) startJob(w http.ResponseWriter, r *http.Request, started, title string, fn func(ctx context.Context, progress func(projections.Progress)) (string, error)) {
	switch err := c.jobs.start(principal(r), title, fn); {
	case err == nil:
		c.adminRedirect(w, r, "melding", started)
	case errors.Is(err, errJobRunning):
		c.adminRedirect(w, r, "feil", "jobb")
	case errors.Is(err, errShuttingDown):
		c.adminRedirect(w, r, "feil", "avslutter")
	default:
		c.apiError(w, r, err)
	}
}

// adminRebuild starts a rebuild (AdminService.Rebuild's body, in process).
func (c *Console) adminRebuild(w http.ResponseWriter, r *http.Request) {
	if err := c.allowed(r.Context(), nirv1connect.AdminServiceRebuildProcedure); err != nil {
		c.apiError(w, r, err)
		return
	}
	c.startJob(w, r, "gjenoppbygging", "Gjenoppbygging av lesemodellene", func(ctx context.Context, progress func(projections.Progress)) (string, error) {
		ckpt, err := c.admin.RebuildAs(ctx, &nirv1.RebuildRequest{}, progress)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("Lesemodellene er gjenoppbygd og tatt i bruk ved sekvens %s.", number(int64(ckpt))), nil
	})
}

// adminSnapshotCreate starts an as-of replay kept as a named snapshot
// (AdminService.CreateSnapshot's body, in process).
func (c *Console) adminSnapshotCreate(w http.ResponseWriter, r *http.Request) {
	if err := c.allowed(r.Context(), nirv1connect.AdminServiceCreateSnapshotProcedure); err != nil {
		c.apiError(w, r, err)
		return
	}
	name := strings.TrimSpace(r.PostFormValue("navn"))
	cutoff, err := rules.ParseDate(strings.TrimSpace(r.PostFormValue("avskjaering")))
	if err != nil {
		c.adminRedirect(w, r, "feil", "dato")
		return
	}
	if !snapshotNameOK(name) {
		c.adminRedirect(w, r, "feil", "navn")
		return
	}
	req := &nirv1.CreateSnapshotRequest{Name: name, CutoffDate: cutoff.Proto(), Replace: r.PostFormValue("erstatt") == "ja"}
	c.startJob(w, r, "snapshot", "Øyeblikksbilde "+name, func(ctx context.Context, progress func(projections.Progress)) (string, error) {
		info, err := c.admin.CreateSnapshotAs(ctx, req, progress)
		if err != nil {
			return "", err
		}
		if info.GetCheckpoint() == 0 {
			return fmt.Sprintf("Øyeblikksbildet %s er laget, men holder ingen hendelser: alt i registeret ble registrert etter avskjæringen, så alle tall er null.", name), nil
		}
		return fmt.Sprintf("Øyeblikksbildet %s er laget med hendelsene registrert til og med %s (til sekvens %s).", name, longDate(cutoff), number(int64(info.GetCheckpoint()))), nil
	})
}

func snapshotNameOK(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range s {
		ok := c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && strings.ContainsRune("@._-", c)
		if !ok {
			return false
		}
	}
	return true
}

// adminSnapshotDelete deletes a snapshot (AdminService.DeleteSnapshot, in process).
func (c *Console) adminSnapshotDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PostFormValue("navn")
	_, err := call(c, r.Context(), nirv1connect.AdminServiceDeleteSnapshotProcedure, c.admin.DeleteSnapshot, &nirv1.DeleteSnapshotRequest{Name: name})
	switch connect.CodeOf(err) {
	case 0:
		c.adminRedirect(w, r, "melding", "slettet")
	case connect.CodeNotFound, connect.CodeInvalidArgument:
		c.adminRedirect(w, r, "feil", "ukjent")
	default:
		c.apiError(w, r, err)
	}
}

// adminJob is the running job's state as JSON, for the page's progress bar.
func (c *Console) adminJob(w http.ResponseWriter, r *http.Request) {
	if err := c.allowed(r.Context(), nirv1connect.AdminServiceProjectionStatusProcedure); err != nil {
		http.Error(w, "ingen tilgang", http.StatusForbidden)
		return
	}
	out := struct {
		Running bool   `json:"running"`
		Done    uint64 `json:"done"`
		Total   uint64 `json:"total"`
		Text    string `json:"text"`
	}{}
	if js, ok := c.jobs.latest(); ok {
		v := c.jobView(js)
		out.Running, out.Done, out.Total, out.Text = v.Running, v.Done, v.Total, v.Text
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}
