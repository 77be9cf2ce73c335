package config

import (
	"strings"
	"testing"
)

// The original Hector's deployment guide writes server.auth this way; it
// must mean one JWT issuer and an admin key, with a warning for the key.
func TestSeedAuthForm(t *testing.T) {
	doc, errs := Parse([]byte(`server:
  auth:
    enabled: true
    jwks_url: https://idp.example.com/.well-known/jwks.json
    issuer: https://idp.example.com/
    audience: hector
    api_keys:
      - ${API_KEY_1}
llms: {e: {provider: echo}}
agents: {a: {llm: e}}
`), env(map[string]string{"API_KEY_1": "seed-key-0123456789"}))
	if errs != nil {
		t.Fatal(errs)
	}
	a := doc.Config.Server.Auth
	if !a.Required() || a.Require == nil || !*a.Require {
		t.Fatalf("enabled: true must require credentials: %+v", a)
	}
	if len(a.APIKeys) != 1 || a.APIKeys[0].Role != RoleAdmin || a.APIKeys[0].Name != "key-1" || a.APIKeys[0].Key != "seed-key-0123456789" {
		t.Fatalf("plain key: %+v", a.APIKeys)
	}
	if len(a.JWT) != 1 || a.JWKSURL != "" {
		t.Fatalf("the shorthand is not one issuer: %+v", a)
	}
	is := a.JWT[0]
	if is.Issuer != "https://idp.example.com/" || is.Audience != "hector" || is.RoleClaim != "role" || is.TenantClaim != "tenant_id" ||
		is.SubjectClaim != "sub" || is.DefaultRole != RoleUser || is.Leeway.D().Seconds() != 30 || is.RefreshInterval.D().Minutes() != 15 {
		t.Fatalf("issuer defaults: %+v", is)
	}
	if len(doc.Warnings) != 2 || doc.Warnings[0].Path != "server.auth.enabled" || doc.Warnings[1].Path != "server.auth.api_keys[0]" || !strings.Contains(doc.Warnings[1].Message, "role admin") {
		t.Fatalf("warnings: %v", doc.Warnings)
	}
}

const minimal = "llms: {e: {provider: echo}}\nagents: {a: {llm: e}}\n"

func TestJWTAsOneMappingOrAList(t *testing.T) {
	one, errs := Parse([]byte("server: {auth: {jwt: {issuer: a, audience: h, jwks_url: 'https://a.example/jwks'}}}\n"+minimal), env(nil))
	if errs != nil {
		t.Fatal(errs)
	}
	list, errs := Parse([]byte("server: {auth: {jwt: [{issuer: a, audience: h, jwks_url: 'https://a.example/jwks'}, {issuer: b, audience: h, jwks_url: 'https://b.example/jwks'}]}}\n"+minimal), env(nil))
	if errs != nil {
		t.Fatal(errs)
	}
	if len(one.Config.Server.Auth.JWT) != 1 || len(list.Config.Server.Auth.JWT) != 2 || list.Config.Server.Auth.JWT[1].Name != "b" {
		t.Fatalf("%+v %+v", one.Config.Server.Auth.JWT, list.Config.Server.Auth.JWT)
	}
	if !one.Config.Server.Auth.Required() {
		t.Fatal("an issuer alone must require credentials")
	}
}

func TestAuthErrorsNameTheField(t *testing.T) {
	for doc, want := range map[string]string{
		"server: {auth: {require: true}}":                                                      "server.auth.require: true needs a credential",
		"server: {auth: {enabled: true, require: false, api_keys: [aaaaaaaaaaaaaaaa]}}":        "server.auth.enabled: is true but require is false",
		"server: {auth: {jwt: {jwks_url: 'http://idp.example/jwks'}}}":                         "server.auth.jwt[0].jwks_url: must use https",
		"server: {auth: {jwt: {issuer: x}}}":                                                   "server.auth.jwt[0].jwks_url: required",
		"server: {auth: {jwt: [{jwks_url: 'https://a/j'}, {jwks_url: 'https://b/j'}]}}":        "server.auth.jwt[0].issuer: required when several issuers",
		"server: {auth: {audience: h}}":                                                        "server.auth.jwks_url: required when",
		"server: {auth: {jwks_url: 'https://a/j', jwt: {issuer: i, jwks_url: 'https://b/j'}}}": "server.auth.issuer: required when several issuers",
		"server: {auth: {api_keys: [short]}}":                                                  "server.auth.api_keys[0]: must be at least 16 characters",
		"server: {auth: {api_keys: [{name: 'a:b', key: aaaaaaaaaaaaaaaa, role: user}]}}":       "server.auth.api_keys[0].name: must not contain ':'",
		"server: {auth: {jwt: {jwks_url: 'https://a/j', default_role: root}}}":                 "server.auth.jwt[0].default_role:",
		"server: {auth: {jwt: [{issuer: 'https://kc/realms/a', jwks_url: 'https://kc/a'}, {issuer: 'https://kc/realms/b', jwks_url: 'https://kc/b'}]}}": "server.auth.jwt[1].name: name \"kc\" is used twice",
		"server: {auth: {jwt: {name: key, jwks_url: 'https://a/j'}}}":                                                                                   "server.auth.jwt[0].name: \"key\" is reserved",
		"server: {auth: {jwt: {name: 'a:b', jwks_url: 'https://a/j'}}}":                                                                                 "server.auth.jwt[0].name: \"a:b\" is not a valid name",
		"server: {auth: {api_keys: [{name: anonymous, key: aaaaaaaaaaaaaaaa, role: user}]}}":                                                            "server.auth.api_keys[0].name: \"anonymous\" is reserved",
	} {
		_, errs := Parse([]byte(doc+"\n"+minimal), env(nil))
		if errs == nil || !strings.Contains(errs.Error(), want) {
			t.Errorf("%s\n got %v\nwant %s", doc, errs, want)
		}
	}
	// http is allowed on loopback, where tests and sidecars serve keys.
	if _, errs := Parse([]byte("server: {auth: {jwt: {audience: h, jwks_url: 'http://127.0.0.1:9/jwks'}}}\n"+minimal), env(nil)); errs != nil {
		t.Errorf("loopback http: %v", errs)
	}
}

func TestPlainAPIKeyIsRedacted(t *testing.T) {
	src := "server:\n  auth:\n    api_keys: [plain-secret-0123456789, '${KEY}']\n"
	out, err := Redact([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "plain-secret") || !strings.Contains(string(out), "${KEY}") {
		t.Fatalf("%s", out)
	}
	back, err := Unredact(out, []byte(src))
	if err != nil || string(back) != src {
		t.Fatalf("unredact: %v\n%s", err, back)
	}
}

func TestRequireFalseWarns(t *testing.T) {
	doc, errs := Parse([]byte("server: {auth: {require: false, api_keys: [{name: a, key: aaaaaaaaaaaaaaaa, role: admin}]}}\n"+minimal), env(nil))
	if errs != nil {
		t.Fatal(errs)
	}
	if doc.Config.Server.Auth.Required() || len(doc.Warnings) != 1 || doc.Warnings[0].Path != "server.auth.require" {
		t.Fatalf("%v", doc.Warnings)
	}
}
