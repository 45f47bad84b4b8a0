//! Authentication beyond client certificates, driven with the real kubectl: static
//! token files, service-account tokens from the TokenRequest API (used as bearer
//! tokens, reviewed, expired, forged, orphaned), the review APIs behind `kubectl auth
//! whoami` / `auth can-i`, OIDC discovery of the service-account issuer, and the
//! audit log.

mod common;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use common::kube::KubeServer;
use kuberaft::authn::jwt::{public_keys_from_pem, Jws, PublicKey, SigningKey};
use serde_json::{json, Value};

fn phase(what: &str) {
    eprintln!("--- {what}");
}

/// Kubeconfigs for the server without client certificates: one for bearer tokens
/// (`--token`), one for anonymous requests. The anonymous one names a basic-auth user
/// only so that kubectl does not prompt for credentials; the server ignores basic auth.
struct Anonymous {
    kubeconfig: PathBuf,
    anonymous: PathBuf,
}

impl Anonymous {
    fn new(s: &KubeServer) -> Anonymous {
        let admin = std::fs::read_to_string(&s.kubeconfig).expect("admin kubeconfig");
        let field = |name: &str| {
            admin
                .lines()
                .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
                .expect("kubeconfig field")
        };
        let text = |user: &str| {
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\nusers:\n- name: nobody\n  user: {user}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: nobody\n    namespace: default\ncurrent-context: c\n",
                field("server:"),
                field("certificate-authority-data:"),
            )
        };
        let kubeconfig = s.dir.path().join("token.kubeconfig");
        std::fs::write(&kubeconfig, text("{}")).expect("write kubeconfig");
        let anonymous = s.dir.path().join("anonymous.kubeconfig");
        std::fs::write(&anonymous, text("{username: nobody}")).expect("write kubeconfig");
        Anonymous {
            kubeconfig,
            anonymous,
        }
    }

    fn run(&self, token: Option<&str>, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut cmd = Command::new("kubectl");
        match token {
            Some(t) => cmd
                .arg("--kubeconfig")
                .arg(&self.kubeconfig)
                .arg(format!("--token={t}")),
            None => cmd.arg("--kubeconfig").arg(&self.anonymous),
        };
        cmd.args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("run kubectl");
        let input = stdin.unwrap_or("");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl with `token`; stdout, failing the test on error.
    fn ok(&self, token: &str, args: &[&str]) -> String {
        let out = self.run(Some(token), args, None);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// True when a request with `token` is refused with a 401 Status.
    fn unauthorized(&self, token: &str) -> bool {
        let out = self.run(
            Some(token),
            &["get", "--raw", "/api/v1/namespaces", "-v=8"],
            None,
        );
        let err = String::from_utf8_lossy(&out.stderr);
        !out.status.success()
            && err.contains("You must be logged in to the server (Unauthorized)")
            && err.contains("\"code\": 401")
    }

    /// `kubectl create -f -` of `yaml` as `token`, the created object as JSON.
    fn create(&self, token: &str, yaml: &str) -> Value {
        let out = self.run(
            Some(token),
            &["create", "--validate=false", "-f", "-", "-o", "json"],
            Some(yaml),
        );
        assert!(
            out.status.success(),
            "create failed:\n{}\n{yaml}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("json output")
    }
}

/// `kubectl create -f - -o json` as the admin.
fn create(s: &KubeServer, yaml: &str) -> Value {
    let out = s.kubectl_stdin(
        &["create", "--validate=false", "-f", "-", "-o", "json"],
        yaml,
    );
    assert!(
        out.status.success(),
        "create failed:\n{}\n{yaml}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json output")
}

/// POST serviceaccounts/{name}/token as the admin: the TokenRequest, or kubectl's error.
fn request_token(s: &KubeServer, ns: &str, name: &str, body: Value) -> Result<Value, String> {
    let path = format!("/api/v1/namespaces/{ns}/serviceaccounts/{name}/token");
    let out = s.kubectl_stdin(&["create", "--raw", &path, "-f", "-"], &body.to_string());
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).expect("TokenRequest JSON"))
}

fn token_of(tr: &Value) -> String {
    tr["status"]["token"]
        .as_str()
        .expect("status.token")
        .to_owned()
}

fn whoami(anon: &Anonymous, token: &str) -> Value {
    anon.create(
        token,
        "apiVersion: authentication.k8s.io/v1\nkind: SelfSubjectReview\n",
    )["status"]["userInfo"]
        .clone()
}

fn token_review(s: &KubeServer, token: &str, audiences: &[&str]) -> Value {
    let review = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": token, "audiences": audiences},
    });
    create(s, &review.to_string())["status"].clone()
}

/// Polls `check` until true or the deadline passes.
fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64
}

#[test]
fn reviews_and_token_file_users() {
    let files = tempfile::tempdir().expect("tmp");
    let csv = files.path().join("tokens.csv");
    std::fs::write(
        &csv,
        "alice-token,alice,1001,\"dev,ops\"\nbob-token,bob,1002\n",
    )
    .expect("write csv");
    let s = KubeServer::start(&["--token-auth-file", csv.to_str().expect("path")]);
    let anon = Anonymous::new(&s);

    phase("SelfSubjectReview: the admin certificate's user and groups");
    let me = create(
        &s,
        "apiVersion: authentication.k8s.io/v1\nkind: SelfSubjectReview\n",
    );
    assert_eq!(
        me["status"]["userInfo"]["username"], "kubernetes-admin",
        "{me}"
    );
    assert_eq!(
        me["status"]["userInfo"]["groups"],
        json!(["system:masters", "system:authenticated"])
    );

    phase("token file users authenticate with their uid and groups");
    let alice = whoami(&anon, "alice-token");
    assert_eq!(alice["username"], "alice");
    assert_eq!(alice["uid"], "1001");
    assert_eq!(
        alice["groups"],
        json!(["dev", "ops", "system:authenticated"])
    );
    let bob = whoami(&anon, "bob-token");
    assert_eq!(bob["groups"], json!(["system:authenticated"]));
    assert!(anon
        .ok("alice-token", &["get", "namespaces"])
        .contains("kube-system"));
    assert!(
        anon.unauthorized("carol-token"),
        "an unknown token is refused"
    );

    phase("TokenReview of a valid and of an invalid token");
    let ok = token_review(&s, "alice-token", &[]);
    assert_eq!(ok["authenticated"], true, "{ok}");
    assert_eq!(ok["user"]["username"], "alice");
    assert_eq!(
        ok["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    let bad = token_review(&s, "garbage", &[]);
    assert!(bad.get("authenticated").is_none_or(|a| a == false), "{bad}");
    assert_eq!(bad["error"], "invalid bearer token");
    // Token file tokens are good for the API audiences only.
    let other = token_review(&s, "alice-token", &["vault"]);
    assert!(
        other.get("authenticated").is_none_or(|a| a == false),
        "{other}"
    );
    let out = s.kubectl_stdin(
        &["create", "--validate=false", "-f", "-"],
        "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: \"\"\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("token is required for TokenReview in authentication"),
        "{err}"
    );

    phase("access reviews: self, for another user, and invalid ones");
    let ssar = create(
        &s,
        "apiVersion: authorization.k8s.io/v1\nkind: SelfSubjectAccessReview\nspec:\n  resourceAttributes:\n    verb: create\n    resource: pods\n    namespace: default\n",
    );
    assert_eq!(ssar["status"]["allowed"], true, "{ssar}");
    let sar = create(
        &s,
        "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: bob\n  nonResourceAttributes:\n    verb: get\n    path: /healthz\n",
    );
    assert_eq!(sar["status"]["allowed"], true, "{sar}");
    let out = s.kubectl_stdin(
        &["create", "--validate=false", "-f", "-"],
        "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: bob\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("The SubjectAccessReview \"\" is invalid: spec.resourceAttributes: Invalid value: null: exactly one of nonResourceAttributes or resourceAttributes must be specified"),
        "{err}"
    );
    let lsar = s.kubectl_stdin(
        &["create", "--validate=false", "-n", "default", "-f", "-", "-o", "json"],
        "apiVersion: authorization.k8s.io/v1\nkind: LocalSubjectAccessReview\nspec:\n  user: bob\n  resourceAttributes:\n    verb: get\n    resource: secrets\n    namespace: default\n",
    );
    assert!(
        lsar.status.success(),
        "{}",
        String::from_utf8_lossy(&lsar.stderr)
    );
    let lsar: Value = serde_json::from_slice(&lsar.stdout).expect("json");
    assert_eq!(lsar["status"]["allowed"], true, "{lsar}");

    phase("SelfSubjectRulesReview under AlwaysAllow: everything, complete");
    let rules = anon.create(
        "alice-token",
        "apiVersion: authorization.k8s.io/v1\nkind: SelfSubjectRulesReview\nspec:\n  namespace: default\n",
    );
    assert_eq!(rules["status"]["incomplete"], false, "{rules}");
    assert_eq!(
        rules["status"]["resourceRules"],
        json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}])
    );
    assert_eq!(
        rules["status"]["nonResourceRules"],
        json!([{"verbs": ["*"], "nonResourceURLs": ["*"]}])
    );

    phase("reviews are listed by discovery and accept create only");
    let resources = s.ok(&[
        "api-resources",
        "--api-group=authorization.k8s.io",
        "-o",
        "wide",
    ]);
    for r in [
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "subjectaccessreviews",
        "localsubjectaccessreviews",
    ] {
        assert!(resources.contains(r), "{r} missing:\n{resources}");
    }
    let err = String::from_utf8_lossy(&s.kubectl(&["get", "tokenreviews"]).stderr).into_owned();
    assert!(
        err.contains("MethodNotAllowed")
            || err.contains("not allowed")
            || err.contains("the server does not allow"),
        "{err}"
    );
}

#[test]
fn service_account_tokens_authenticate_until_their_objects_go() {
    let s = KubeServer::start(&[]);
    let anon = Anonymous::new(&s);
    let pki = s.data_dir().join("pki");

    phase("the TokenRequest API issues a signed JWT with upstream's claims");
    let tr = request_token(
        &s,
        "default",
        "default",
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}}),
    )
    .expect("token request");
    assert_eq!(tr["kind"], "TokenRequest", "{tr}");
    assert_eq!(tr["spec"]["expirationSeconds"], 3600);
    assert_eq!(
        tr["spec"]["audiences"],
        json!(["https://kubernetes.default.svc.cluster.local"])
    );
    assert!(
        tr["status"]["expirationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z')),
        "{tr}"
    );
    let token = token_of(&tr);
    let claims = Jws::parse(&token)
        .expect("a JWS")
        .peek_claims()
        .expect("claims");
    let sa = s.ok(&[
        "get",
        "serviceaccount",
        "default",
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    assert_eq!(
        claims["iss"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(claims["sub"], "system:serviceaccount:default:default");
    assert_eq!(claims["kubernetes.io"]["namespace"], "default");
    assert_eq!(
        claims["kubernetes.io"]["serviceaccount"],
        json!({"name": "default", "uid": sa})
    );
    let (iat, exp) = (
        claims["iat"].as_i64().expect("iat"),
        claims["exp"].as_i64().expect("exp"),
    );
    assert_eq!(exp - iat, 3600);
    assert_eq!(claims["nbf"], claims["iat"]);
    assert!(
        claims["jti"].as_str().is_some_and(|j| j.len() == 36),
        "{claims}"
    );

    phase("the token authenticates as the service account");
    assert!(anon
        .ok(&token, &["get", "namespaces"])
        .contains("kube-system"));
    let me = whoami(&anon, &token);
    assert_eq!(
        me["username"], "system:serviceaccount:default:default",
        "{me}"
    );
    assert_eq!(me["uid"], sa.as_str());
    assert_eq!(
        me["groups"],
        json!([
            "system:serviceaccounts",
            "system:serviceaccounts:default",
            "system:authenticated"
        ])
    );
    assert_eq!(
        me["extra"]["authentication.kubernetes.io/credential-id"],
        json!([format!("JTI={}", claims["jti"].as_str().expect("jti"))])
    );
    let review = token_review(&s, &token, &[]);
    assert_eq!(review["authenticated"], true, "{review}");
    assert_eq!(
        review["user"]["username"],
        "system:serviceaccount:default:default"
    );

    phase("audience-scoped tokens work for their audience only");
    let vault = token_of(
        &request_token(
            &s,
            "default",
            "default",
            json!({"spec": {"audiences": ["vault"], "expirationSeconds": 600}}),
        )
        .expect("vault token"),
    );
    assert!(
        anon.unauthorized(&vault),
        "a vault token is not good for the API"
    );
    let review = token_review(&s, &vault, &["vault"]);
    assert_eq!(review["authenticated"], true, "{review}");
    assert_eq!(review["audiences"], json!(["vault"]));
    let review = token_review(&s, &vault, &[]);
    assert!(
        review["error"]
            .as_str()
            .is_some_and(|e| e.contains("token audiences [\"vault\"] is invalid")),
        "{review}"
    );

    phase("expired, forged and garbage tokens are refused with 401");
    let key = SigningKey::from_pem(&std::fs::read(pki.join("sa.key")).expect("sa.key"))
        .expect("server key");
    let mut old = claims.clone();
    old["iat"] = json!(now() - 7200);
    old["nbf"] = json!(now() - 7200);
    old["exp"] = json!(now() - 3600);
    assert!(
        anon.unauthorized(&key.sign(&old).expect("sign")),
        "expired token"
    );
    let review = token_review(&s, &key.sign(&old).expect("sign"), &[]);
    assert_eq!(
        review["error"], "service account token has expired",
        "{review}"
    );
    let foreign_pem = rcgen::KeyPair::generate().expect("key").serialize_pem();
    let foreign = SigningKey::from_pem(foreign_pem.as_bytes()).expect("foreign key");
    assert!(
        anon.unauthorized(&foreign.sign(&claims).expect("sign")),
        "foreign-signed token"
    );
    assert!(anon.unauthorized("garbage"), "garbage token");
    assert!(
        anon.unauthorized(&format!("{token}x")),
        "tampered signature"
    );

    phase("TokenRequest validation and errors");
    let err = request_token(
        &s,
        "default",
        "default",
        json!({"spec": {"expirationSeconds": 60}}),
    )
    .unwrap_err();
    assert!(
        err.contains("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"),
        "{err}"
    );
    let err = request_token(&s, "default", "nobody", json!({"spec": {}})).unwrap_err();
    assert!(
        err.contains("serviceaccounts \"nobody\" not found"),
        "{err}"
    );
    let err = request_token(
        &s,
        "default",
        "default",
        json!({"spec": {"boundObjectRef": {"kind": "ConfigMap", "apiVersion": "v1", "name": "x"}}}),
    )
    .unwrap_err();
    assert!(
        err.contains("cannot bind token to object of type /v1, Kind=ConfigMap"),
        "{err}"
    );
    let err = request_token(
        &s,
        "default",
        "default",
        json!({"metadata": {"name": "other"}, "spec": {}}),
    )
    .unwrap_err();
    assert!(
        err.contains("must match the service account name if specified"),
        "{err}"
    );

    phase("a token bound to a secret dies with the secret");
    create(
        &s,
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: binder\ndata:\n  a: Yg==\n",
    );
    let secret_uid = s.ok(&["get", "secret", "binder", "-o", "jsonpath={.metadata.uid}"]);
    let bound = request_token(
        &s,
        "default",
        "default",
        json!({"spec": {"boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "binder", "uid": secret_uid}}}),
    )
    .expect("bound token");
    let bound = token_of(&bound);
    let bound_claims = Jws::parse(&bound)
        .expect("jws")
        .peek_claims()
        .expect("claims");
    assert_eq!(
        bound_claims["kubernetes.io"]["secret"],
        json!({"name": "binder", "uid": secret_uid})
    );
    assert!(anon.ok(&bound, &["get", "namespaces"]).contains("default"));
    let err = request_token(
        &s,
        "default",
        "default",
        json!({"spec": {"boundObjectRef": {"kind": "Secret", "apiVersion": "v1", "name": "binder", "uid": "stale"}}}),
    )
    .unwrap_err();
    assert!(
        err.contains("the UID in the bound object reference (stale) does not match"),
        "{err}"
    );
    s.ok(&["delete", "secret", "binder"]);
    wait_until("the secret-bound token to be refused", || {
        anon.unauthorized(&bound)
    });

    phase("a token of a deleted service account is refused");
    let robot_sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: robot\n";
    create(&s, robot_sa);
    let robot =
        token_of(&request_token(&s, "default", "robot", json!({"spec": {}})).expect("robot token"));
    assert_eq!(
        whoami(&anon, &robot)["username"],
        "system:serviceaccount:default:robot"
    );
    s.ok(&["delete", "serviceaccount", "robot"]);
    wait_until("the deleted service account's token to be refused", || {
        anon.unauthorized(&robot)
    });
    create(&s, robot_sa);
    assert!(
        anon.unauthorized(&robot),
        "a recreated account (new uid) does not revive old tokens"
    );
}

#[test]
fn oidc_discovery_is_served_anonymously() {
    let s = KubeServer::start(&[]);
    let anon = Anonymous::new(&s);

    phase("the discovery document names the issuer and the JWKS");
    let out = anon.run(
        None,
        &["get", "--raw", "/.well-known/openid-configuration"],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        config["issuer"],
        "https://kubernetes.default.svc.cluster.local"
    );
    assert_eq!(
        config["jwks_uri"],
        format!("https://127.0.0.1:{}/openid/v1/jwks", s.port)
    );
    assert_eq!(config["response_types_supported"], json!(["id_token"]));
    assert_eq!(config["subject_types_supported"], json!(["public"]));
    assert_eq!(
        config["id_token_signing_alg_values_supported"],
        json!(["ES256"])
    );

    phase("the key set holds the signing key under upstream's key id");
    let out = anon.run(None, &["get", "--raw", "/openid/v1/jwks"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let jwks: Value = serde_json::from_slice(&out.stdout).expect("json");
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1, "{jwks}");
    let public =
        public_keys_from_pem(&std::fs::read(s.data_dir().join("pki/sa.pub")).expect("sa.pub"))
            .expect("pub");
    assert_eq!(keys[0]["kid"], public[0].key_id());
    assert_eq!(keys[0]["kty"], "EC");
    assert_eq!(keys[0]["crv"], "P-256");
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["use"], "sig");
    let tr = request_token(&s, "default", "default", json!({"spec": {}})).expect("token");
    let token = token_of(&tr);
    assert_eq!(
        Jws::parse(&token).expect("jws").key_id(),
        Some(public[0].key_id())
    );
    // The JWK's coordinates are the key: rebuilt into a P-256 SPKI, it verifies tokens.
    let coord = |c: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(keys[0][c].as_str().expect("coordinate"))
            .expect("base64url")
    };
    let mut spki = vec![
        0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08,
        0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
    ];
    spki.extend(coord("x"));
    spki.extend(coord("y"));
    let from_jwk = PublicKey::from_spki(&spki).expect("jwk key");
    assert_eq!(from_jwk.key_id(), public[0].key_id());
    assert!(
        Jws::parse(&token).expect("jws").verify(&[from_jwk]).is_ok(),
        "the published key verifies issued tokens"
    );
}

#[test]
fn access_reviews_report_denials() {
    let s = KubeServer::start(&["--authorization-mode", "AlwaysDeny"]);

    phase("SubjectAccessReview for an ordinary user is denied");
    let sar = create(
        &s,
        "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: bob\n  resourceAttributes:\n    verb: get\n    resource: pods\n    namespace: default\n",
    );
    assert_eq!(sar["status"]["allowed"], false, "{sar}");
    assert_eq!(sar["status"]["denied"], true, "{sar}");

    phase("members of system:masters are always allowed");
    let sar = create(
        &s,
        "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: root\n  groups: [\"system:masters\"]\n  resourceAttributes:\n    verb: delete\n    resource: nodes\n",
    );
    assert_eq!(sar["status"]["allowed"], true, "{sar}");
}

/// kubectl's typed commands, which send their bodies as application/vnd.kubernetes.protobuf.
#[test]
fn kubectl_auth_commands() {
    let s = KubeServer::start(&[]);
    let anon = Anonymous::new(&s);

    phase("kubectl auth whoami");
    let out = s.ok(&["auth", "whoami"]);
    assert!(out.contains("kubernetes-admin"), "{out}");
    assert!(
        out.contains("[system:masters system:authenticated]"),
        "{out}"
    );

    phase("kubectl auth can-i");
    assert_eq!(s.ok(&["auth", "can-i", "create", "pods"]).trim(), "yes");
    let list = s.ok(&["auth", "can-i", "--list"]);
    assert!(list.contains("*.*") && list.contains("[*]"), "{list}");

    phase("kubectl create token, then use it");
    let token = s.ok(&["create", "token", "default"]);
    let token = token.trim();
    assert_eq!(
        Jws::parse(token)
            .expect("jws")
            .peek_claims()
            .expect("claims")["sub"],
        "system:serviceaccount:default:default"
    );
    assert!(anon
        .ok(token, &["auth", "whoami"])
        .contains("system:serviceaccount:default:default"));
    let err = s.fails(&["create", "token", "nobody"]);
    assert!(
        err.contains("serviceaccounts \"nobody\" not found"),
        "{err}"
    );
}

/// `--audit-log-path`: one audit.k8s.io/v1 Event per request, with the user, the
/// verb, the object and the response code; secrets' data never reaches the log.
#[test]
fn audit_log_records_who_did_what() {
    let audit_dir = tempfile::tempdir().expect("tmp");
    let path = audit_dir.path().join("audit.log");
    let path_arg = path.to_str().expect("utf-8 path").to_owned();
    let s = KubeServer::start(&["--audit-log-path", &path_arg]);
    s.ok(&[
        "create",
        "secret",
        "generic",
        "audited",
        "--from-literal=password=hunter2",
    ]);
    s.fails(&["get", "configmap", "missing-cm"]);
    let events = || -> Vec<Value> {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("every audit line is JSON"))
            .collect()
    };
    wait_until("the audit event of the secret's create", || {
        events()
            .iter()
            .any(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "secrets")
    });
    let evs = events();
    let created = evs
        .iter()
        .find(|e| e["verb"] == "create" && e["objectRef"]["resource"] == "secrets")
        .expect("an event for the secret's create");
    assert_eq!(created["apiVersion"], "audit.k8s.io/v1");
    assert_eq!(created["kind"], "Event");
    assert_eq!(created["level"], "Metadata");
    assert_eq!(created["stage"], "ResponseComplete");
    assert_eq!(created["user"]["username"], "kubernetes-admin");
    assert_eq!(created["objectRef"]["namespace"], "default");
    assert_eq!(created["responseStatus"]["code"], 201);
    assert!(created["auditID"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(created["userAgent"]
        .as_str()
        .is_some_and(|ua| ua.starts_with("kubectl")));
    assert_eq!(created["sourceIPs"][0], "127.0.0.1");
    wait_until("the audit event of the failed get", || {
        events()
            .iter()
            .any(|e| e["verb"] == "get" && e["objectRef"]["name"] == "missing-cm")
    });
    let missing = events()
        .into_iter()
        .find(|e| e["verb"] == "get" && e["objectRef"]["name"] == "missing-cm")
        .expect("event");
    assert_eq!(missing["responseStatus"]["code"], 404);
    let text = std::fs::read_to_string(&path).expect("log");
    assert!(
        !text.contains("hunter2") && !text.contains("aHVudGVyMg"),
        "secret data reached the audit log"
    );
}
