package source

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/hector-run/hector/internal/testsvc"
)

const authDoc = "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\n"

// open opens a spec, failing the test on error; the source is closed at
// the end.
func open(t *testing.T, s Spec) Source {
	t.Helper()
	src, err := Open(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, ok := src.(interface{ Close() error }); ok {
			c.Close()
		}
	})
	return src
}

// loadErr loads with a short timeout and returns the error, checking that
// no secret leaks into it.
func loadErr(t *testing.T, src Source, secrets ...string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rev := src.Load(ctx)
	if rev.Err != nil {
		for _, s := range secrets {
			if strings.Contains(rev.Err.Error(), s) {
				t.Fatalf("error shows a secret: %v", rev.Err)
			}
		}
	}
	return rev.Err
}

func TestEtcdUsernamePassword(t *testing.T) {
	proc := testsvc.Etcd(t)
	ctx := testsvc.Context(t, 30*time.Second)
	root, err := clientv3.New(NewEtcdConfig([]string{proc.Addr()}))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for _, step := range []func() error{
		func() error { _, err := root.Put(ctx, "/hector/secure", authDoc); return err },
		func() error { _, err := root.UserAdd(ctx, "root", "s3cret-pw"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := root.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	good := open(t, Spec{Type: "etcd", Endpoints: []string{proc.Addr()}, Key: "/hector/secure", Username: "root", Password: "s3cret-pw"})
	if err := loadErr(t, good); err != nil {
		t.Fatalf("with the right password: %v", err)
	}
	bad := open(t, Spec{Type: "etcd", Endpoints: []string{proc.Addr()}, Key: "/hector/secure", Username: "root", Password: "wrong-pw"})
	if err := loadErr(t, bad, "wrong-pw"); err == nil || !strings.Contains(err.Error(), "authentication failed") {
		t.Fatalf("with a wrong password: %v", err)
	}
	anon := open(t, Spec{Type: "etcd", Endpoints: []string{proc.Addr()}, Key: "/hector/secure"})
	if err := loadErr(t, anon); err == nil {
		t.Fatal("read without credentials succeeded")
	}
}

func TestEtcdClientCertificates(t *testing.T) {
	ca := testsvc.NewCA(t)
	proc := testsvc.EtcdTLS(t, ca)
	cert, key := ca.Issue("hector")
	src := open(t, Spec{Type: "etcd", Endpoints: []string{proc.Addr()}, Key: "/hector/tls", CAFile: ca.File, CertFile: cert, KeyFile: key})
	if err := src.(Writer).Write([]byte(authDoc)); err != nil {
		t.Fatal(err)
	}
	if err := loadErr(t, src); err != nil {
		t.Fatalf("over TLS with a client certificate: %v", err)
	}
	// Trusting the server but presenting no certificate is refused.
	nocert := open(t, Spec{Type: "etcd", Endpoints: []string{proc.Addr()}, Key: "/hector/tls", CAFile: ca.File})
	nocert.(*Etcd).Timeout = 2 * time.Second
	if err := loadErr(t, nocert); err == nil {
		t.Fatal("read without a client certificate succeeded")
	}
	if _, err := Open(Spec{Type: "etcd", CertFile: cert}); err == nil || !strings.Contains(err.Error(), "--config-cert and --config-key") {
		t.Fatalf("cert without key: %v", err)
	}
}

func TestConsulACLToken(t *testing.T) {
	proc := testsvc.ConsulACL(t, "mgmt-token-123")
	good := open(t, Spec{Type: "consul", Endpoints: []string{proc.Addr()}, Key: "hector/secure", Token: "mgmt-token-123"})
	// The ACL system may need a moment after the leader is elected.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := good.(Writer).Write([]byte(authDoc))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := loadErr(t, good); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	anon := open(t, Spec{Type: "consul", Endpoints: []string{proc.Addr()}, Key: "hector/secure"})
	anon.(*Consul).Base.Token = "" // not CONSUL_HTTP_TOKEN from the environment
	err := loadErr(t, anon)
	// Consul hides keys the token may not read: a denied read looks absent.
	if err == nil {
		t.Fatal("read without a token succeeded")
	}
	wrong := open(t, Spec{Type: "consul", Endpoints: []string{proc.Addr()}, Key: "hector/secure", Token: "not-the-token"})
	if err := loadErr(t, wrong, "not-the-token"); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("with a wrong token: %v", err)
	}
}

func TestZooKeeperDigest(t *testing.T) {
	proc := testsvc.ZooKeeper(t)
	owner := open(t, Spec{Type: "zookeeper", Endpoints: []string{proc.Addr()}, Key: "/hector/secure", Username: "hector", Password: "zk-pw"})
	if err := owner.(Writer).Write([]byte(authDoc)); err != nil {
		t.Fatal(err)
	}
	if err := loadErr(t, owner); err != nil {
		t.Fatalf("with the digest: %v", err)
	}
	anon := open(t, Spec{Type: "zookeeper", Endpoints: []string{proc.Addr()}, Key: "/hector/secure"})
	err := loadErr(t, anon)
	if err == nil || !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("without the digest: %v", err)
	}
	wrong := open(t, Spec{Type: "zookeeper", Endpoints: []string{proc.Addr()}, Key: "/hector/secure", Username: "hector", Password: "nope-pw"})
	if err := loadErr(t, wrong, "nope-pw"); err == nil || !errors.Is(err, zk.ErrNoAuth) {
		t.Fatalf("with a wrong digest: %v", err)
	}
}

func TestConsulClientCertificates(t *testing.T) {
	ca := testsvc.NewCA(t)
	proc := testsvc.ConsulTLS(t, ca)
	cert, key := ca.Issue("hector")
	src := open(t, Spec{Type: "consul", Endpoints: []string{proc.Addr()}, Key: "hector/tls", CAFile: ca.File, CertFile: cert, KeyFile: key})
	if err := src.(Writer).Write([]byte(authDoc)); err != nil {
		t.Fatal(err)
	}
	if err := loadErr(t, src); err != nil {
		t.Fatalf("over TLS with a client certificate: %v", err)
	}
	nocert := open(t, Spec{Type: "consul", Endpoints: []string{proc.Addr()}, Key: "hector/tls", CAFile: ca.File})
	if err := loadErr(t, nocert); err == nil {
		t.Fatal("read without a client certificate succeeded")
	}
	plain := open(t, Spec{Type: "consul", Endpoints: []string{proc.Addr()}, Key: "hector/tls"})
	if err := loadErr(t, plain); err == nil {
		t.Fatal("plain HTTP to a TLS-only Consul succeeded")
	}
}
