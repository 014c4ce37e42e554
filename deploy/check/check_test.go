package check

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// deploy is the deploy/ directory.
const deploy = ".."

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deploy, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// natsVersion is the nats-server version go.mod pins, e.g. "2.15.3".
func natsVersion(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*github\.com/nats-io/nats-server/v2 v([0-9.]+)`).FindSubmatch(read(t, "../go.mod"))
	if m == nil {
		t.Fatal("go.mod does not require github.com/nats-io/nats-server/v2")
	}
	return string(m[1])
}

// passwordVars are the NIR_NATS_*_PASSWORD variables accounts.conf reads (comments aside).
func passwordVars(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	for line := range strings.SplitSeq(string(read(t, "nats/accounts.conf")), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range regexp.MustCompile(`\$(NIR_NATS_[A-Z0-9_]+_PASSWORD)`).FindAllStringSubmatch(line, -1) {
			seen[m[1]] = true
		}
	}
	var out []string
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	if len(out) < 3 {
		t.Fatalf("accounts.conf reads %d password variables: the extraction is broken", len(out))
	}
	return out
}

// nirdEnv are the NIR_* variables nird reads: one per flag of cmd/nird.
func nirdEnv(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(deploy, "..", "cmd", "nird", "*.go"))
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range regexp.MustCompile(`\b(?:str|num|dur|flt|optBool)\(&[^,]+,\s*"([a-z0-9-]+)"`).FindAllSubmatch(b, -1) {
			out["NIR_"+strings.ToUpper(strings.ReplaceAll(string(m[1]), "-", "_"))] = true
		}
	}
	if len(out) < 10 || !out["NIR_NATS_URL"] {
		t.Fatalf("found %d nird flags: the extraction is broken", len(out))
	}
	return out
}

// object is one decoded manifest.
type object struct {
	file string
	obj  any
}

// manifests decodes every document of deploy/kubernetes/*.yaml strictly into its Kubernetes
// type; an unknown kind, an unknown field or a duplicate field fails the test.
func manifests(t *testing.T) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deploy, "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var out []object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(stripYAMLComments(doc)) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s document %d: %v", f, i, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 Namespace":
				obj = &corev1.Namespace{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "apps/v1 StatefulSet":
				obj = &appsv1.StatefulSet{}
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "policy/v1 PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			default:
				t.Fatalf("%s document %d: %s %s is not a kind this check knows", f, i, tm.APIVersion, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s document %d (%s): %v", f, i, tm.Kind, err)
			}
			out = append(out, object{file: filepath.Base(f), obj: obj})
		}
	}
	return out
}

func stripYAMLComments(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// kustomization is the part of a Kustomization deploy/ uses, decoded strictly.
type kustomization struct {
	APIVersion         string   `json:"apiVersion"`
	Kind               string   `json:"kind"`
	Namespace          string   `json:"namespace"`
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name    string   `json:"name"`
		Files   []string `json:"files"`
		Options struct {
			Labels map[string]string `json:"labels"`
		} `json:"options"`
	} `json:"configMapGenerator"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

func readKustomization(t *testing.T) kustomization {
	t.Helper()
	var k kustomization
	if err := yaml.UnmarshalStrict(read(t, "kustomization.yaml"), &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	return k
}

// TestKustomization: every resource and generated file exists, and every manifest is a
// resource.
func TestKustomization(t *testing.T) {
	k := readKustomization(t)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" || k.Namespace != "nir" {
		t.Errorf("kustomization: %s %s namespace %q", k.APIVersion, k.Kind, k.Namespace)
	}
	for _, r := range k.Resources {
		if _, err := os.Stat(filepath.Join(deploy, r)); err != nil {
			t.Errorf("resource %s: %v", r, err)
		}
	}
	files, _ := filepath.Glob(filepath.Join(deploy, "kubernetes", "*.yaml"))
	for _, f := range files {
		if !slices.Contains(k.Resources, "kubernetes/"+filepath.Base(f)) {
			t.Errorf("%s is not a resource of kustomization.yaml", f)
		}
	}
	for _, g := range k.ConfigMapGenerator {
		for _, f := range g.Files {
			if _, err := os.Stat(filepath.Join(deploy, f)); err != nil {
				t.Errorf("configMapGenerator %s: %v", g.Name, err)
			}
		}
	}
}

// TestKubernetesManifests decodes every manifest strictly and checks what the register relies
// on: pods that run as non-root with a read-only root file system and no capabilities, with
// requests and a memory limit; nird ready on /readyz and live on /healthz of its admin port,
// configured only by variables nird reads, with the token file, the person key, the master
// key and the checkpoint key from a Secret;
// NATS with every password accounts.conf reads, the configuration made from deploy/nats, and
// the nats-server version go.mod pins; Services and disruption budgets that select pods and
// name ports that exist.
func TestKubernetesManifests(t *testing.T) {
	objs := manifests(t)
	k := readKustomization(t)
	generated := map[string]bool{}
	for _, g := range k.ConfigMapGenerator {
		generated[g.Name] = true
	}
	env := nirdEnv(t)
	pods := map[string]*corev1.PodTemplateSpec{}
	var services []*corev1.Service
	var pdbs []*policyv1.PodDisruptionBudget
	kinds := map[string]int{}
	for _, o := range objs {
		switch x := o.obj.(type) {
		case *appsv1.StatefulSet:
			kinds["StatefulSet"]++
			pods[x.Name] = &x.Spec.Template
			checkSelector(t, x.Name, x.Spec.Selector, x.Spec.Template.Labels)
			if x.Name == "nats" && (x.Spec.Replicas == nil || *x.Spec.Replicas != 3) {
				t.Errorf("StatefulSet nats: replicas %v, want 3 (R3)", x.Spec.Replicas)
			}
			if len(x.Spec.VolumeClaimTemplates) == 0 {
				t.Errorf("StatefulSet %s: no volume claim for the JetStream store", x.Name)
			}
		case *appsv1.Deployment:
			kinds["Deployment"]++
			pods[x.Name] = &x.Spec.Template
			checkSelector(t, x.Name, x.Spec.Selector, x.Spec.Template.Labels)
		case *corev1.Service:
			kinds["Service"]++
			services = append(services, x)
		case *policyv1.PodDisruptionBudget:
			kinds["PodDisruptionBudget"]++
			pdbs = append(pdbs, x)
		}
	}
	if kinds["StatefulSet"] != 1 || kinds["Deployment"] != 1 || kinds["Service"] < 2 || kinds["PodDisruptionBudget"] != 2 {
		t.Errorf("kinds %v: want the nats StatefulSet, the nird Deployment, their Services and budgets", kinds)
	}
	for name, pod := range pods {
		checkPod(t, name, pod, generated)
	}

	nats, nird := pods["nats"], pods["nird"]
	if nats == nil || nird == nil {
		t.Fatalf("want pods nats and nird, have %v", pods)
	}
	if img := nats.Spec.Containers[0].Image; !strings.HasPrefix(img, "nats:"+natsVersion(t)) {
		t.Errorf("nats image %s, want the version go.mod pins (%s)", img, natsVersion(t))
	}
	natsEnv := map[string]corev1.EnvVar{}
	for _, e := range nats.Spec.Containers[0].Env {
		natsEnv[e.Name] = e
	}
	for _, v := range append(passwordVars(t), "NIR_NATS_ROUTE_PASSWORD") {
		if e, ok := natsEnv[v]; !ok || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "nats-passwords" {
			t.Errorf("nats: %s is not set from the Secret nats-passwords", v)
		}
	}
	for _, v := range []string{"SERVER_NAME", "NATS_ROUTE_1", "NATS_ROUTE_2", "NATS_ROUTE_3"} {
		if _, ok := natsEnv[v]; !ok {
			t.Errorf("nats: %s (deploy/nats/container.conf) is not set", v)
		}
	}

	c := nird.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port.String() != "admin" {
		t.Errorf("nird readiness probe %+v, want /readyz on the admin port", c.ReadinessProbe)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe.HTTPGet.Port.String() != "admin" {
		t.Errorf("nird liveness probe %+v, want /healthz on the admin port", c.LivenessProbe)
	}
	have := map[string]string{}
	for _, e := range c.Env {
		if !env[e.Name] {
			t.Errorf("nird: %s is no variable nird reads", e.Name)
		}
		have[e.Name] = e.Value
	}
	for _, v := range []string{"NIR_NATS_URL", "NIR_REPLICAS", "NIR_NATS_PASSWORD", "NIR_NATS_INGRESS_PASSWORD", "NIR_TOKENS", "NIR_PERSON_KEY_FILE"} {
		if _, ok := have[v]; !ok {
			t.Errorf("nird: %s is not set", v)
		}
	}
	if have["NIR_REPLICAS"] != "3" {
		t.Errorf("nird: NIR_REPLICAS %q, want 3", have["NIR_REPLICAS"])
	}
	secretFiles := map[string]bool{}
	for _, v := range nird.Spec.Volumes {
		if v.Secret != nil && v.Secret.SecretName == "nird-files" {
			for _, it := range v.Secret.Items {
				secretFiles["/etc/nird/"+it.Path] = true
			}
		}
	}
	// The checkpoint key too: every pod signs checkpoints with the one key (each pod's own,
	// made in its emptyDir, gave checkpoints no one public key verifies).
	for _, v := range []string{"NIR_TOKENS", "NIR_PERSON_KEY_FILE", "NIR_MASTER_KEY_FILE", "NIR_CHECKPOINT_KEY"} {
		if !secretFiles[have[v]] {
			t.Errorf("nird: %s=%s is not a file of the Secret nird-files", v, have[v])
		}
	}

	for _, s := range services {
		var pod *corev1.PodTemplateSpec
		for _, p := range pods {
			if labelsMatch(s.Spec.Selector, p.Labels) {
				pod = p
			}
		}
		if pod == nil {
			t.Errorf("Service %s selects no pod", s.Name)
			continue
		}
		for _, p := range s.Spec.Ports {
			if !hasPort(pod, p.TargetPort.String()) {
				t.Errorf("Service %s: target port %s is no container port", s.Name, p.TargetPort.String())
			}
		}
	}
	for _, b := range pdbs {
		found := false
		for _, p := range pods {
			found = found || labelsMatch(b.Spec.Selector.MatchLabels, p.Labels)
		}
		if !found {
			t.Errorf("PodDisruptionBudget %s selects no pod", b.Name)
		}
	}
}

func checkSelector(t *testing.T, name string, sel *metav1.LabelSelector, labels map[string]string) {
	t.Helper()
	if sel == nil || !labelsMatch(sel.MatchLabels, labels) {
		t.Errorf("%s: selector %v does not select its template's labels %v", name, sel, labels)
	}
}

func labelsMatch(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func hasPort(pod *corev1.PodTemplateSpec, port string) bool {
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
				return true
			}
		}
	}
	return false
}

// checkPod: the restricted Pod Security Standard, requests and a memory limit, probes, and
// volumes that refer to what exists.
func checkPod(t *testing.T, name string, pod *corev1.PodTemplateSpec, generated map[string]bool) {
	t.Helper()
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod security context %+v, want non-root and the runtime's seccomp profile", name, sc)
	}
	mounts := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		mounts[v.Name] = true
		if v.ConfigMap != nil && !generated[v.ConfigMap.Name] {
			t.Errorf("%s: volume %s uses ConfigMap %s, which kustomization.yaml does not make", name, v.Name, v.ConfigMap.Name)
		}
		if v.HostPath != nil {
			t.Errorf("%s: volume %s is a host path", name, v.Name)
		}
	}
	for _, c := range pod.Spec.Containers {
		cs := c.SecurityContext
		if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation ||
			cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) {
			t.Errorf("%s/%s: container security context %+v, want a read-only root, no privilege escalation, every capability dropped", name, c.Name, cs)
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Errorf("%s/%s: resources %+v, want CPU and memory requests and a memory limit", name, c.Name, c.Resources)
		}
		if c.ReadinessProbe == nil || c.LivenessProbe == nil {
			t.Errorf("%s/%s: readiness and liveness probes are required", name, c.Name)
		}
		for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe, c.StartupProbe} {
			if p != nil && p.HTTPGet != nil && !hasPort(pod, p.HTTPGet.Port.String()) {
				t.Errorf("%s/%s: probe on port %s, which the container does not have", name, c.Name, p.HTTPGet.Port.String())
			}
		}
		for _, m := range c.VolumeMounts {
			if !mounts[m.Name] && !hasClaim(m.Name) {
				t.Errorf("%s/%s: mount %s names no volume", name, c.Name, m.Name)
			}
		}
	}
}

// hasClaim: the StatefulSet's volume claim template "data".
func hasClaim(name string) bool { return name == "data" }

// compose is the part of the compose specification deploy/compose uses, decoded strictly.
type compose struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Secrets  map[string]struct {
		File string `json:"file"`
	} `json:"secrets"`
	Volumes map[string]struct{} `json:"volumes"`
}

type composeService struct {
	Image       string            `json:"image"`
	Command     []string          `json:"command"`
	ReadOnly    bool              `json:"read_only"`
	Environment map[string]string `json:"environment"`
	Volumes     []string          `json:"volumes"`
	Tmpfs       []string          `json:"tmpfs"`
	Ports       []string          `json:"ports"`
	Secrets     []string          `json:"secrets"`
	GroupAdd    []string          `json:"group_add"`
	DependsOn   map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on"`
	Healthcheck *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval"`
		Retries  int      `json:"retries"`
	} `json:"healthcheck"`
}

// TestCompose: the laptop cluster's file decodes strictly, mounts deploy/nats's files, sets
// every password accounts.conf reads from the .env that secrets.sh writes, gives every nird
// the one checkpoint key of a secret, and refers only to services, volumes and secrets it
// declares.
func TestCompose(t *testing.T) {
	var c compose
	if err := yaml.UnmarshalStrict(read(t, "compose/compose.yaml"), &c); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	script := string(read(t, "compose/secrets.sh"))
	nats := 0
	for name, s := range c.Services {
		if !s.ReadOnly {
			t.Errorf("%s: not read_only", name)
		}
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") {
				if _, err := os.Stat(filepath.Join(deploy, "compose", src)); err != nil {
					t.Errorf("%s: volume %s: %v", name, v, err)
				}
			} else if _, ok := c.Volumes[src]; !ok {
				t.Errorf("%s: volume %s is not declared", name, src)
			}
		}
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is no service", name, dep)
			}
		}
		for _, sec := range s.Secrets {
			if _, ok := c.Secrets[sec]; !ok {
				t.Errorf("%s: secret %s is not declared", name, sec)
			}
		}
		// nird reads its secrets through their group: others may not read the person key.
		if len(s.Secrets) > 0 && (len(s.GroupAdd) != 1 || !strings.Contains(s.GroupAdd[0], "NIR_SECRETS_GID") || !strings.Contains(script, "NIR_SECRETS_GID")) {
			t.Errorf("%s: reads secrets without group_add of the group secrets.sh writes them for (NIR_SECRETS_GID)", name)
		}
		if strings.Contains(script, "0644") {
			t.Errorf("secrets.sh makes secrets readable by others")
		}
		for k, v := range s.Environment {
			for _, m := range regexp.MustCompile(`\$\{(NIR_NATS_[A-Z_]+)`).FindAllStringSubmatch(v, -1) {
				if !strings.Contains(script, strings.TrimSuffix(strings.TrimPrefix(m[1], "NIR_NATS_"), "_PASSWORD")) {
					t.Errorf("%s: %s reads %s, which secrets.sh does not write", name, k, m[1])
				}
			}
		}
		if strings.HasPrefix(s.Image, "nir:") && !slices.ContainsFunc(s.Secrets, func(sec string) bool {
			return s.Environment["NIR_CHECKPOINT_KEY"] == "/run/secrets/"+sec
		}) {
			// Every nird signs checkpoints with the one key: each one's own, in its volume,
			// gave checkpoints no one public key verifies, and no backup could be sealed.
			t.Errorf("%s: NIR_CHECKPOINT_KEY %q is not one of its secrets", name, s.Environment["NIR_CHECKPOINT_KEY"])
		}
		if strings.HasPrefix(s.Image, "nats:") {
			nats++
			if !strings.HasPrefix(s.Image, "nats:"+natsVersion(t)) {
				t.Errorf("%s: image %s, want the version go.mod pins (%s)", name, s.Image, natsVersion(t))
			}
			for _, v := range append(passwordVars(t), "NIR_NATS_ROUTE_PASSWORD", "SERVER_NAME", "NATS_ROUTE_1", "NATS_ROUTE_2", "NATS_ROUTE_3") {
				if _, ok := s.Environment[v]; !ok {
					t.Errorf("%s: %s is not set", name, v)
				}
			}
		}
	}
	if nats != 3 {
		t.Errorf("%d NATS nodes, want 3", nats)
	}
}

// rules is a Prometheus rule file, decoded strictly.
type rules struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []struct {
			Alert       string            `json:"alert"`
			Expr        string            `json:"expr"`
			For         string            `json:"for"`
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"rules"`
	} `json:"groups"`
}

// TestAlertRules: the rule file decodes strictly; every rule is an alert with a unique name,
// an expression with balanced brackets, a severity and a summary; and the alerts the issue
// asks for are there (lag, refusals, conflicts, disk, lease).
func TestAlertRules(t *testing.T) {
	var r rules
	if err := yaml.UnmarshalStrict(read(t, "monitoring/alerts.yaml"), &r); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}
	names := map[string]bool{}
	var exprs strings.Builder
	for _, g := range r.Groups {
		for _, rule := range g.Rules {
			if rule.Alert == "" || names[rule.Alert] {
				t.Errorf("group %s: alert %q missing or repeated", g.Name, rule.Alert)
			}
			names[rule.Alert] = true
			if !balanced(rule.Expr) {
				t.Errorf("%s: unbalanced brackets in %q", rule.Alert, rule.Expr)
			}
			if s := rule.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q", rule.Alert, s)
			}
			if rule.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", rule.Alert)
			}
			exprs.WriteString(rule.Expr + "\n")
			if rule.Alert == "NirEventKindUnknown" && !strings.Contains(rule.Expr, "(nir_projection_unknown_kind_events_total) > 0") {
				// A nird that meets them all before its first scrape (an older pod rebuilding
				// its models at start in a rolling upgrade) has a series that begins at its
				// final value: increase() over it is 0, and the alert never fired.
				t.Errorf("%s: %q must fire on the count itself, not on its increase", rule.Alert, rule.Expr)
			}
		}
	}
	for _, m := range []string{"nir_projection_lag_events", "nir_rule_refusals_total", "nir_append_conflicts_total", "nir_data_free_bytes", "nir_regelmotor_lease_held", "nir_regelmotor_lease_lost_total", "nir_regelmotor_last_pass_timestamp_seconds", "nir_regelmotor_failed_passes_total", "nir_stream_config_mismatch", "nir_projection_quarantines_total", "nir_projection_unknown_kind_events_total"} {
		if !strings.Contains(exprs.String(), m) {
			t.Errorf("no alert on %s", m)
		}
	}
	// What rises at every start of a pod with an empty data directory over a stream that
	// holds an old quarantined message (its catch-up quarantines it again), and at a
	// rebuild, fires no alert: the quarantine gauge and the found-again count. Until
	// 2026-12-08 NirReadModelsQuarantined fired on the gauge's rise.
	for _, m := range []string{"nir_projection_quarantined", "nir_projection_quarantines_found_again_total"} {
		if regexp.MustCompile(`\b` + m + `\b`).MatchString(exprs.String()) {
			t.Errorf("an alert fires on %s, which a new pod's catch-up raises", m)
		}
	}
}

func balanced(s string) bool {
	var stack []rune
	pairs := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inString := false
	for _, c := range s {
		switch {
		case c == '"':
			inString = !inString
		case inString:
		case c == '(' || c == '[' || c == '{':
			stack = append(stack, c)
		case pairs[c] != 0:
			if len(stack) == 0 || stack[len(stack)-1] != pairs[c] {
				return false
			}
			stack = stack[:len(stack)-1]
		}
	}
	return len(stack) == 0 && !inString
}

// TestDashboard: the Grafana dashboard decodes strictly into the fields it uses, every panel
// queries the templated Prometheus data source, and panels have unique ids and fit the grid.
func TestDashboard(t *testing.T) {
	type target struct {
		RefID        string            `json:"refId"`
		Expr         string            `json:"expr"`
		LegendFormat string            `json:"legendFormat"`
		Datasource   map[string]string `json:"datasource"`
	}
	type panel struct {
		Type        string                   `json:"type"`
		Title       string                   `json:"title"`
		Description string                   `json:"description"`
		ID          int                      `json:"id"`
		Collapsed   bool                     `json:"collapsed"`
		Datasource  map[string]string        `json:"datasource"`
		GridPos     struct{ H, W, X, Y int } `json:"gridPos"`
		FieldConfig json.RawMessage          `json:"fieldConfig"`
		Options     json.RawMessage          `json:"options"`
		Panels      []json.RawMessage        `json:"panels"`
		Targets     []target                 `json:"targets"`
	}
	var d struct {
		Title, UID, Timezone, Refresh string
		Tags                          []string
		SchemaVersion                 int             `json:"schemaVersion"`
		Version                       int             `json:"version"`
		Time                          json.RawMessage `json:"time"`
		Editable                      bool            `json:"editable"`
		GraphTooltip                  int             `json:"graphTooltip"`
		Templating                    json.RawMessage `json:"templating"`
		Annotations                   json.RawMessage `json:"annotations"`
		Links                         json.RawMessage `json:"links"`
		Panels                        []panel         `json:"panels"`
	}
	dec := json.NewDecoder(bytes.NewReader(read(t, "monitoring/grafana-dashboard.json")))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	if d.UID == "" || d.SchemaVersion < 30 || len(d.Panels) < 10 {
		t.Errorf("dashboard uid %q schema %d, %d panels", d.UID, d.SchemaVersion, len(d.Panels))
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d repeated", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q is wider than the grid", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource["uid"] != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %v, %d queries", p.Title, p.Datasource, len(p.Targets))
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || !balanced(tg.Expr) {
				t.Errorf("panel %q: query %q", p.Title, tg.Expr)
			}
		}
	}
}
