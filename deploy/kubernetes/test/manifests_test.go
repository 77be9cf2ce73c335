package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const overlays = "../overlays"

// kinds maps apiVersion/kind to a new object of the official type. A kind
// not listed is an error: the test must learn to check it.
var kinds = map[string]func() any{
	"v1/Namespace":                           func() any { return &corev1.Namespace{} },
	"v1/Secret":                              func() any { return &corev1.Secret{} },
	"v1/ConfigMap":                           func() any { return &corev1.ConfigMap{} },
	"v1/Service":                             func() any { return &corev1.Service{} },
	"v1/PersistentVolumeClaim":               func() any { return &corev1.PersistentVolumeClaim{} },
	"apps/v1/Deployment":                     func() any { return &appsv1.Deployment{} },
	"apps/v1/StatefulSet":                    func() any { return &appsv1.StatefulSet{} },
	"batch/v1/CronJob":                       func() any { return &batchv1.CronJob{} },
	"networking.k8s.io/v1/Ingress":           func() any { return &networkingv1.Ingress{} },
	"networking.k8s.io/v1/NetworkPolicy":     func() any { return &networkingv1.NetworkPolicy{} },
	"autoscaling/v2/HorizontalPodAutoscaler": func() any { return &autoscalingv2.HorizontalPodAutoscaler{} },
	"policy/v1/PodDisruptionBudget":          func() any { return &policyv1.PodDisruptionBudget{} },
}

// rendered is one overlay's objects, decoded.
type rendered struct {
	name    string
	objects []any
}

var docSep = regexp.MustCompile(`(?m)^---[ \t]*$`)

// render runs kubectl kustomize on an overlay and decodes every document
// strictly: a field the API type does not have is an error, as is a
// duplicate key.
func render(t *testing.T, overlay string) rendered {
	t.Helper()
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl is not installed: the Kubernetes overlays are not checked (kubectl kustomize renders offline)")
	}
	var stderr bytes.Buffer
	cmd := exec.Command(kubectl, "kustomize", filepath.Join(overlays, overlay))
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", overlay, err, stderr.String())
	}
	r := rendered{name: overlay}
	for i, doc := range docSep.Split(string(out), -1) {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		obj, err := decode(doc)
		if err != nil {
			t.Fatalf("%s: document %d: %v", overlay, i, err)
		}
		r.objects = append(r.objects, obj)
	}
	if len(r.objects) == 0 {
		t.Fatalf("%s rendered nothing", overlay)
	}
	return r
}

// decode decodes one YAML document into the API type of its kind,
// strictly: a duplicate key, a field the type does not have or a kind not
// in kinds is an error.
func decode(doc string) (any, error) {
	js, err := yaml.YAMLToJSONStrict([]byte(doc))
	if err != nil {
		return nil, err
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, err
	}
	key := tm.APIVersion + "/" + tm.Kind
	newObj, ok := kinds[key]
	if !ok {
		return nil, fmt.Errorf("a %s, which this test does not know", key)
	}
	obj := newObj()
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(obj); err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return obj, nil
}

// TestDecodeIsStrict: the decoding the overlays go through refuses what
// the API server would drop or refuse.
func TestDecodeIsStrict(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 1\n  replica: 2\n",
		"nested unknown field": "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - {port: 80, targetPort: 80, protcol: TCP}\n",
		"wrong type":           "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: {b: c}}\n",
		"duplicate key":        "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"unknown kind":         "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\n",
		"old version":          "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n",
	} {
		if _, err := decode(doc); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
	if _, err := decode("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n"); err != nil {
		t.Errorf("a valid Namespace: %v", err)
	}
}

// all returns the objects of type T.
func all[T any](r rendered) []T {
	var out []T
	for _, o := range r.objects {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// named returns the one object of type T with that name.
func named[T interface{ GetName() string }](t *testing.T, r rendered, name string) T {
	t.Helper()
	for _, v := range all[T](r) {
		if v.GetName() == name {
			return v
		}
	}
	var zero T
	t.Fatalf("%s: no %T named %q", r.name, zero, name)
	return zero
}

func TestOverlaysDecodeStrictly(t *testing.T) {
	for _, overlay := range []string{"sqlite-single", "postgres-ha"} {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, overlay)
			seen := map[string]bool{}
			for _, o := range r.objects {
				m := o.(metav1.ObjectMetaAccessor).GetObjectMeta()
				kind := fmt.Sprintf("%T", o)
				if seen[kind+"/"+m.GetName()] {
					t.Errorf("%s %s appears twice", kind, m.GetName())
				}
				seen[kind+"/"+m.GetName()] = true
				if _, isNS := o.(*corev1.Namespace); isNS {
					if m.GetName() != "hector" {
						t.Errorf("namespace %q, want hector", m.GetName())
					}
				} else if m.GetNamespace() != "hector" {
					t.Errorf("%s %s is in namespace %q, want hector", kind, m.GetName(), m.GetNamespace())
				}
			}
			named[*corev1.Namespace](t, r, "hector")
			named[*corev1.Secret](t, r, "hector-secrets")
			named[*networkingv1.Ingress](t, r, "hector")
		})
	}
}

// TestHectorDeployment: the server's pod as both overlays render it.
func TestHectorDeployment(t *testing.T) {
	for _, overlay := range []string{"sqlite-single", "postgres-ha"} {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, overlay)
			d := named[*appsv1.Deployment](t, r, "hector")
			pod := d.Spec.Template.Spec
			if pod.TerminationGracePeriodSeconds == nil || *pod.TerminationGracePeriodSeconds <= 30 {
				t.Errorf("terminationGracePeriodSeconds %s: must exceed server.shutdown_timeout (30s)", show(pod.TerminationGracePeriodSeconds))
			}
			if len(pod.Containers) != 1 {
				t.Fatalf("%d containers, want 1", len(pod.Containers))
			}
			c := pod.Containers[0]
			checkProbes(t, c)
			checkHardened(t, pod, c, 65532)

			argv, ok := hectorInvocation(c.Command, c.Args)
			if !ok || len(argv) == 0 || argv[0] != "serve" {
				t.Fatalf("the container runs %q %q, want hector serve", c.Command, c.Args)
			}
			if i := slices.Index(argv, "--config"); i < 0 || i+1 >= len(argv) || argv[i+1] != "/etc/hector/hector.yaml" {
				t.Errorf("hector serve %q: want --config /etc/hector/hector.yaml", argv[1:])
			}
			if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
				return e.SecretRef != nil && e.SecretRef.Name == "hector-secrets"
			}) {
				t.Error("the environment does not come from the Secret hector-secrets")
			}
			if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == 8080 }) {
				t.Error("no containerPort 8080")
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() ||
				c.Resources.Limits.Cpu().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("resources %+v: want cpu and memory requests and limits", c.Resources)
			}

			// The configuration: a ConfigMap mounted as a directory.
			// The kubelet never updates a subPath mount.
			cfg := mountAt(t, c, "/etc/hector")
			vol := volume(t, pod, cfg.Name)
			if vol.ConfigMap == nil || vol.ConfigMap.Name != "hector-config" {
				t.Fatalf("/etc/hector is volume %+v, want the ConfigMap hector-config", vol.VolumeSource)
			}
			if len(vol.ConfigMap.Items) != 0 {
				t.Errorf("the config volume projects only %v: every key should appear", vol.ConfigMap.Items)
			}
			for _, m := range c.VolumeMounts {
				if m.SubPath != "" || m.SubPathExpr != "" {
					t.Errorf("mount %s uses subPath: Kubernetes never updates subPath mounts", m.MountPath)
				}
			}
			cm := named[*corev1.ConfigMap](t, r, "hector-config")
			if _, ok := cm.Data["hector.yaml"]; !ok {
				t.Errorf("ConfigMap hector-config has keys %v, want hector.yaml", keys(cm.Data))
			}
			mountAt(t, c, "/data")

			// The Service reaches these pods on 8080.
			svc := named[*corev1.Service](t, r, "hector")
			if svc.Spec.Type != corev1.ServiceTypeClusterIP && svc.Spec.Type != "" {
				t.Errorf("Service type %s, want ClusterIP", svc.Spec.Type)
			}
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) || len(svc.Spec.Selector) == 0 {
				t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
			}
			if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8080 {
				t.Errorf("Service ports %+v, want 8080", svc.Spec.Ports)
			}
			checkNetworkPolicy(t, r, d)
		})
	}
}

func checkProbes(t *testing.T, c corev1.Container) {
	t.Helper()
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe, "startup": c.StartupProbe} {
		if p == nil {
			if name != "startup" {
				t.Errorf("no %s probe", name)
			}
			continue
		}
		g := p.HTTPGet
		if g == nil || g.Path != "/health" {
			t.Errorf("%s probe %+v: want GET /health", name, p.ProbeHandler)
			continue
		}
		port := g.Port.IntValue()
		if g.Port.StrVal != "" {
			for _, cp := range c.Ports {
				if cp.Name == g.Port.StrVal {
					port = int(cp.ContainerPort)
				}
			}
		}
		if port != 8080 {
			t.Errorf("%s probe on port %s, want 8080", name, g.Port.String())
		}
	}
}

// checkHardened: non-root as uid, read-only root, no privilege escalation,
// every capability dropped.
func checkHardened(t *testing.T, pod corev1.PodSpec, c corev1.Container, uid int64) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Fatalf("container %s has no securityContext", c.Name)
	}
	nonRoot, user := sc.RunAsNonRoot, sc.RunAsUser
	if ps := pod.SecurityContext; ps != nil {
		if nonRoot == nil {
			nonRoot = ps.RunAsNonRoot
		}
		if user == nil {
			user = ps.RunAsUser
		}
	}
	if nonRoot == nil || !*nonRoot {
		t.Errorf("container %s: runAsNonRoot is not true", c.Name)
	}
	if user == nil || *user != uid {
		t.Errorf("container %s: runAsUser %s, want %d", c.Name, show(user), uid)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("container %s: capabilities %+v, want drop ALL and add none", c.Name, sc.Capabilities)
	}
}

func checkNetworkPolicy(t *testing.T, r rendered, d *appsv1.Deployment) {
	t.Helper()
	np := named[*networkingv1.NetworkPolicy](t, r, "hector")
	sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil || !sel.Matches(labels.Set(d.Spec.Template.Labels)) || sel.Empty() {
		t.Errorf("NetworkPolicy selects %v, not the hector pods %v", np.Spec.PodSelector, d.Spec.Template.Labels)
	}
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		t.Errorf("policyTypes %v, want Ingress and Egress", np.Spec.PolicyTypes)
	}
	var fromIngressNS, fromPrometheus bool
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			t.Error("an ingress rule allows every port")
		}
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.IntValue() != 8080 {
				t.Errorf("ingress allows port %v, want only 8080", p.Port)
			}
		}
		if len(rule.From) == 0 {
			t.Error("an ingress rule allows every source")
		}
		for _, peer := range rule.From {
			switch {
			case peer.IPBlock != nil:
				t.Errorf("ingress from an ipBlock %v", peer.IPBlock)
			case peer.PodSelector != nil && peer.PodSelector.MatchLabels["app.kubernetes.io/name"] == "prometheus":
				fromPrometheus = true
			case peer.NamespaceSelector != nil && peer.PodSelector == nil && len(peer.NamespaceSelector.MatchLabels) > 0:
				fromIngressNS = true
			default:
				t.Errorf("ingress from %+v: want the ingress controller's namespace or Prometheus pods", peer)
			}
		}
	}
	if !fromIngressNS || !fromPrometheus {
		t.Errorf("ingress from the ingress namespace %v, from Prometheus %v: want both", fromIngressNS, fromPrometheus)
	}
	egress := map[int]bool{}
	for _, rule := range np.Spec.Egress {
		if len(rule.Ports) == 0 {
			t.Error("an egress rule allows every port")
		}
		for _, p := range rule.Ports {
			egress[p.Port.IntValue()] = true
		}
	}
	for _, port := range []int{53, 443, 5432} {
		if !egress[port] {
			t.Errorf("egress does not allow port %d", port)
		}
	}
	if len(egress) != 3 {
		t.Errorf("egress ports %v, want only 53, 443 and 5432", keys(egress))
	}
}

func mountAt(t *testing.T, c corev1.Container, path string) corev1.VolumeMount {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if m.MountPath == path {
			return m
		}
	}
	t.Fatalf("container %s mounts nothing at %s", c.Name, path)
	return corev1.VolumeMount{}
}

func volume(t *testing.T, pod corev1.PodSpec, name string) corev1.Volume {
	t.Helper()
	for _, v := range pod.Volumes {
		if v.Name == name {
			return v
		}
	}
	t.Fatalf("no volume %s", name)
	return corev1.Volume{}
}

// show prints what a pointer points to, or "unset".
func show[T any](p *T) string {
	if p == nil {
		return "unset"
	}
	return fmt.Sprint(*p)
}

func keys[K comparable, V any](m map[K]V) []K {
	var out []K
	for k := range m {
		out = append(out, k)
	}
	return out
}

// secretValue reads a key of a rendered Secret (stringData, then data).
func secretValue(t *testing.T, r rendered, secret, key string) string {
	t.Helper()
	s := named[*corev1.Secret](t, r, secret)
	if v, ok := s.StringData[key]; ok {
		return v
	}
	if v, ok := s.Data[key]; ok {
		return string(v)
	}
	t.Fatalf("Secret %s has no key %s", secret, key)
	return ""
}

func TestSQLiteSingleOverlay(t *testing.T) {
	r := render(t, "sqlite-single")
	d := named[*appsv1.Deployment](t, r, "hector")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("replicas %s, want 1: SQLite is one file", show(d.Spec.Replicas))
	}
	if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType || d.Spec.Strategy.RollingUpdate != nil {
		t.Errorf("strategy %+v, want Recreate", d.Spec.Strategy)
	}
	if n := len(all[*autoscalingv2.HorizontalPodAutoscaler](r)); n != 0 {
		t.Errorf("%d HPAs: SQLite cannot scale out", n)
	}
	pod := d.Spec.Template.Spec
	data := volume(t, pod, mountAt(t, pod.Containers[0], "/data").Name)
	if data.PersistentVolumeClaim == nil || data.EmptyDir != nil {
		t.Fatalf("/data is %+v, want only a PVC", data.VolumeSource)
	}
	named[*corev1.PersistentVolumeClaim](t, r, data.PersistentVolumeClaim.ClaimName)
	if url := secretValue(t, r, "hector-secrets", "DATABASE_URL"); url != "sqlite:///data/hector.db" {
		t.Errorf("DATABASE_URL %q, want sqlite:///data/hector.db", url)
	}

	cj := named[*batchv1.CronJob](t, r, "hector-backup")
	job := cj.Spec.JobTemplate.Spec.Template.Spec
	if len(job.Containers) != 1 {
		t.Fatalf("backup job has %d containers", len(job.Containers))
	}
	c := job.Containers[0]
	checkHardened(t, job, c, 65532)
	argv, ok := hectorInvocation(c.Command, c.Args)
	if !ok || len(argv) == 0 || argv[0] != "backup" {
		t.Fatalf("backup job runs %q %q, want hector backup", c.Command, c.Args)
	}
	if to := slices.Index(argv, "--to"); to < 0 || !strings.HasPrefix(argv[to+1], "/backup/hector-$(date +%F)") &&
		!strings.HasPrefix(argv[to+1], "/backup/hector-$(date") {
		t.Errorf("hector %q: want --to /backup/hector-$(date +%%F).db", argv)
	}
	if !slices.Contains(argv, "--database") {
		t.Errorf("hector %q: want --database", argv)
	}
	// It shares the data PVC, on the node of the server's pod (ReadWriteOnce).
	jd := volume(t, job, mountAt(t, c, "/data").Name)
	if jd.PersistentVolumeClaim == nil || jd.PersistentVolumeClaim.ClaimName != data.PersistentVolumeClaim.ClaimName {
		t.Errorf("backup job's /data %+v, want the server's PVC", jd.VolumeSource)
	}
	bk := volume(t, job, mountAt(t, c, "/backup").Name)
	if bk.PersistentVolumeClaim == nil {
		t.Errorf("/backup is %+v, want a PVC", bk.VolumeSource)
	} else {
		named[*corev1.PersistentVolumeClaim](t, r, bk.PersistentVolumeClaim.ClaimName)
	}
	if job.Affinity == nil || job.Affinity.PodAffinity == nil {
		t.Error("backup job has no podAffinity to the server's node")
	}
}

func TestPostgresHAOverlay(t *testing.T) {
	r := render(t, "postgres-ha")
	d := named[*appsv1.Deployment](t, r, "hector")
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas %s, want 3", show(d.Spec.Replicas))
	}
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		t.Error("strategy Recreate: the HA overlay rolls")
	}
	podLabels := labels.Set(d.Spec.Template.Labels)

	hpas := all[*autoscalingv2.HorizontalPodAutoscaler](r)
	if len(hpas) != 1 {
		t.Fatalf("%d HPAs, want 1", len(hpas))
	}
	h := hpas[0]
	if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != "hector" {
		t.Errorf("HPA scales %+v, want Deployment hector", h.Spec.ScaleTargetRef)
	}
	if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas != 2 || h.Spec.MaxReplicas != 10 {
		t.Errorf("HPA min %s max %d, want 2 and 10", show(h.Spec.MinReplicas), h.Spec.MaxReplicas)
	}
	if len(h.Spec.Metrics) == 0 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
		t.Errorf("HPA metrics %+v, want CPU", h.Spec.Metrics)
	}

	pdbs := all[*policyv1.PodDisruptionBudget](r)
	if len(pdbs) != 1 {
		t.Fatalf("%d PodDisruptionBudgets, want 1", len(pdbs))
	}
	sel, err := metav1.LabelSelectorAsSelector(pdbs[0].Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(podLabels) {
		t.Errorf("PDB selects %v, not the hector pods %v", pdbs[0].Spec.Selector, podLabels)
	}
	if pdbs[0].Spec.MinAvailable == nil && pdbs[0].Spec.MaxUnavailable == nil {
		t.Error("PDB sets neither minAvailable nor maxUnavailable")
	}

	// PostgreSQL: a StatefulSet with its own volume, behind a headless Service.
	ss := named[*appsv1.StatefulSet](t, r, "hector-postgres")
	if len(ss.Spec.VolumeClaimTemplates) == 0 {
		t.Error("the PostgreSQL StatefulSet has no volumeClaimTemplate")
	}
	hs := named[*corev1.Service](t, r, ss.Spec.ServiceName)
	if hs.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service %s has clusterIP %q, want None (headless)", hs.Name, hs.Spec.ClusterIP)
	}
	if !labels.SelectorFromSet(hs.Spec.Selector).Matches(labels.Set(ss.Spec.Template.Labels)) || len(hs.Spec.Selector) == 0 {
		t.Errorf("Service %s does not select the PostgreSQL pods", hs.Name)
	}
	if labels.SelectorFromSet(hs.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service %s also selects the hector pods", hs.Name)
	}
	url := secretValue(t, r, "hector-secrets", "DATABASE_URL")
	if !strings.HasPrefix(url, "postgres://") || !strings.Contains(url, "@"+ss.Name+"-0."+ss.Spec.ServiceName+":5432/") {
		t.Errorf("DATABASE_URL %q does not point at %s-0.%s:5432", url, ss.Name, ss.Spec.ServiceName)
	}
	if pw := secretValue(t, r, "hector-postgres", "POSTGRES_PASSWORD"); !strings.Contains(url, ":"+pw+"@") {
		t.Error("DATABASE_URL's password is not hector-postgres' POSTGRES_PASSWORD")
	}
	pg := ss.Spec.Template.Spec
	checkHardened(t, pg, pg.Containers[0], 999)

	data := volume(t, d.Spec.Template.Spec, mountAt(t, d.Spec.Template.Spec.Containers[0], "/data").Name)
	if data.EmptyDir == nil {
		t.Errorf("/data is %+v, want an emptyDir (the database is PostgreSQL)", data.VolumeSource)
	}

	var dumps int
	for _, cj := range all[*batchv1.CronJob](r) {
		for _, c := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers {
			if strings.Contains(strings.Join(append(c.Command, c.Args...), " "), "pg_dump") {
				dumps++
				checkHardened(t, cj.Spec.JobTemplate.Spec.Template.Spec, c, 999)
			}
		}
	}
	if dumps != 1 {
		t.Errorf("%d CronJob containers run pg_dump, want 1", dumps)
	}
}

// TestContainerFlagsExist: every --flag a container passes to hector is
// one the hector command accepts (hector SUB -h of this checkout).
func TestContainerFlagsExist(t *testing.T) {
	for _, overlay := range []string{"sqlite-single", "postgres-ha"} {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, overlay)
			var pods []corev1.PodSpec
			for _, d := range all[*appsv1.Deployment](r) {
				pods = append(pods, d.Spec.Template.Spec)
			}
			for _, s := range all[*appsv1.StatefulSet](r) {
				pods = append(pods, s.Spec.Template.Spec)
			}
			for _, cj := range all[*batchv1.CronJob](r) {
				pods = append(pods, cj.Spec.JobTemplate.Spec.Template.Spec)
			}
			var checked int
			for _, pod := range pods {
				for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
					argv, ok := hectorInvocation(c.Command, c.Args)
					if !ok {
						continue
					}
					if len(argv) == 0 {
						t.Errorf("container %s runs hector without a command", c.Name)
						continue
					}
					sub := argv[0]
					if sub != "serve" && sub != "backup" {
						t.Errorf("container %s runs hector %s: want serve or backup", c.Name, sub)
						continue
					}
					flags, ok := commandFlags(t, sub)
					if !ok {
						t.Logf("container %s: this hector has no %q command yet: its flags %q are not checked", c.Name, sub, argv[1:])
						continue
					}
					for _, a := range argv[1:] {
						if !strings.HasPrefix(a, "--") {
							continue
						}
						name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
						if !flags[name] {
							t.Errorf("container %s: hector %s does not accept --%s", c.Name, sub, name)
						}
						checked++
					}
				}
			}
			if checked == 0 {
				t.Error("no hector flag was checked")
			}
		})
	}
}

// TestConfigMapValidates: hector validate accepts the ConfigMap's
// hector.yaml with the environment the Secret gives it.
func TestConfigMapValidates(t *testing.T) {
	for _, overlay := range []string{"sqlite-single", "postgres-ha"} {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, overlay)
			cm := named[*corev1.ConfigMap](t, r, "hector-config")
			dir := t.TempDir()
			file := filepath.Join(dir, "hector.yaml")
			if err := os.WriteFile(file, []byte(cm.Data["hector.yaml"]), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(hector(t), "validate", file)
			cmd.Env = append(os.Environ(), "HECTOR_LLM=")
			for k, v := range named[*corev1.Secret](t, r, "hector-secrets").StringData {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("hector validate: %v\n%s", err, out)
			}
			for _, want := range []string{"host: 0.0.0.0", "port: 8080", "${HECTOR_ADMIN_KEY}", "provider: echo"} {
				if !strings.Contains(cm.Data["hector.yaml"], want) {
					t.Errorf("hector.yaml does not contain %q", want)
				}
			}
		})
	}
}
