//! Service-account tokens: the bound, audience-scoped JWTs the TokenRequest API
//! issues (upstream's claims: iss, sub, aud, exp, iat, nbf, jti and the private
//! `kubernetes.io` claim naming the namespace, service account and bound object), and
//! the bearer-token authenticator that accepts them back.
//!
//! Invariant: a token authenticates only while its signature, issuer, audience and
//! lifetime check out and the service account, and the object the token is bound to,
//! still exist with the UIDs the token names (deleted objects are honoured for the
//! one-minute leeway upstream allows).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::jwt::{Jws, PublicKey, SigningKey};
use super::{AuthnError, TokenAuthenticator, TokenResponse, UserInfo};
use crate::registry::meta;

/// The user name prefix of service accounts.
pub const USER_PREFIX: &str = "system:serviceaccount:";
/// The group of every service account.
pub const ALL_GROUP: &str = "system:serviceaccounts";
/// Upstream's clock skew allowance for exp/nbf/iat and for deleted objects.
pub const LEEWAY_SECONDS: i64 = 60;
/// A pod-bound token requested for this many seconds is a kubelet's projected token:
/// it is issued for a year and warns after the requested time (upstream's
/// `--service-account-extend-token-expiration`).
pub const WARN_ONLY_EXPIRATION_SECONDS: i64 = 60 * 60 + 7;
pub const EXTENDED_EXPIRATION_SECONDS: i64 = 24 * 365 * 60 * 60;

/// User-info extra keys for service-account tokens.
pub const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";
pub const EXTRA_POD_UID: &str = "authentication.kubernetes.io/pod-uid";
pub const EXTRA_NODE_NAME: &str = "authentication.kubernetes.io/node-name";
pub const EXTRA_NODE_UID: &str = "authentication.kubernetes.io/node-uid";
pub const EXTRA_CREDENTIAL_ID: &str = "authentication.kubernetes.io/credential-id";

/// Reads the objects a token names (core/v1 resources by plural name); owned here,
/// implemented by the registry's store.
#[async_trait::async_trait]
pub trait ObjectGetter: Send + Sync + 'static {
    /// The object, None when it does not exist.
    async fn get(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, String>;
}

#[async_trait::async_trait]
impl ObjectGetter for crate::registry::store::Api {
    async fn get(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, String> {
        let Some(res) = self.registry.lookup("", "v1", resource) else {
            return Err(format!("the server does not serve {resource}"));
        };
        // This replica's copy first, then a consistent read when it has not seen the
        // object (upstream: the informer cache, then a live lookup).
        for resource_version in ["0", ""] {
            match crate::registry::store::Api::get(
                self,
                &res,
                "v1",
                namespace,
                name,
                resource_version,
            )
            .await
            {
                Ok(obj) => return Ok(Some(obj)),
                Err(e) if e.code == 404 => continue,
                Err(e) => return Err(e.message),
            }
        }
        Ok(None)
    }
}

/// A name and UID in the `kubernetes.io` claim.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectRef {
    pub name: String,
    pub uid: String,
}

impl ObjectRef {
    pub fn of(obj: &Value) -> ObjectRef {
        ObjectRef {
            name: meta::name(obj).to_owned(),
            uid: meta::uid(obj).to_owned(),
        }
    }

    fn claim(&self) -> Value {
        let mut m = Map::new();
        if !self.name.is_empty() {
            m.insert("name".into(), json!(self.name));
        }
        if !self.uid.is_empty() {
            m.insert("uid".into(), json!(self.uid));
        }
        Value::Object(m)
    }

    fn from_claim(v: Option<&Value>) -> Option<ObjectRef> {
        let v = v?.as_object()?;
        Some(ObjectRef {
            name: v
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            uid: v
                .get("uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        })
    }
}

/// What a token is bound to besides its service account: a pod (and the node it runs
/// on), a secret, or a node.
#[derive(Clone, Debug, Default)]
pub struct Binding {
    pub pod: Option<ObjectRef>,
    pub secret: Option<ObjectRef>,
    pub node: Option<ObjectRef>,
}

/// The service-account token issuer and authenticator.
pub struct ServiceAccounts {
    /// Accepted issuers; the first is written into new tokens.
    issuers: Vec<String>,
    signer: Option<SigningKey>,
    keys: Vec<PublicKey>,
    api_audiences: Vec<String>,
    /// 0: no maximum.
    max_expiration_seconds: i64,
    extend_expiration: bool,
    jwks_uri: Option<String>,
    objects: Option<Arc<dyn ObjectGetter>>,
}

/// How `ServiceAccounts` is set up.
pub struct Settings {
    pub issuers: Vec<String>,
    pub signer: Option<SigningKey>,
    pub keys: Vec<PublicKey>,
    pub api_audiences: Vec<String>,
    pub max_expiration_seconds: i64,
    pub extend_expiration: bool,
    pub jwks_uri: Option<String>,
    pub objects: Option<Arc<dyn ObjectGetter>>,
}

/// The claims and id of a newly issued token.
pub struct Issued {
    pub token: String,
    pub jti: String,
}

impl ServiceAccounts {
    pub fn new(s: Settings) -> ServiceAccounts {
        ServiceAccounts {
            issuers: s.issuers,
            signer: s.signer,
            keys: s.keys,
            api_audiences: s.api_audiences,
            max_expiration_seconds: s.max_expiration_seconds,
            extend_expiration: s.extend_expiration,
            jwks_uri: s.jwks_uri,
            objects: s.objects,
        }
    }

    pub fn issuer(&self) -> &str {
        self.issuers.first().map(String::as_str).unwrap_or("")
    }

    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }

    pub fn max_expiration_seconds(&self) -> i64 {
        self.max_expiration_seconds
    }

    pub fn extend_expiration(&self) -> bool {
        self.extend_expiration
    }

    pub fn public_keys(&self) -> &[PublicKey] {
        &self.keys
    }

    pub fn jwks_uri(&self) -> Option<&str> {
        self.jwks_uri.as_deref()
    }

    /// Signs a token for service account `sa` (a ServiceAccount object) valid from
    /// `now` (Unix seconds) for `expiration_seconds`.
    pub fn issue(
        &self,
        sa: &Value,
        binding: &Binding,
        expiration_seconds: i64,
        warn_after_seconds: i64,
        audiences: &[String],
        now: i64,
    ) -> Result<Issued, String> {
        let signer = self.signer.as_ref().ok_or(
            "no service account signing key is configured (--service-account-signing-key-file)",
        )?;
        if binding.secret.is_some() && (binding.pod.is_some() || binding.node.is_some()) {
            return Err("internal error, token can only be bound to one object type".into());
        }
        let namespace = meta::namespace(sa);
        let mut k8s = Map::new();
        k8s.insert("namespace".into(), json!(namespace));
        k8s.insert("serviceaccount".into(), ObjectRef::of(sa).claim());
        if let Some(pod) = &binding.pod {
            k8s.insert("pod".into(), pod.claim());
        }
        if let Some(secret) = &binding.secret {
            k8s.insert("secret".into(), secret.claim());
        }
        if let Some(node) = &binding.node {
            k8s.insert("node".into(), node.claim());
        }
        if warn_after_seconds != 0 {
            k8s.insert("warnafter".into(), json!(now + warn_after_seconds));
        }
        let jti = meta::new_uid();
        let claims = json!({
            "aud": audiences,
            "exp": now + expiration_seconds,
            "iat": now,
            "iss": self.issuer(),
            "jti": jti,
            "kubernetes.io": k8s,
            "nbf": now,
            "sub": format!("{USER_PREFIX}{namespace}:{}", meta::name(sa)),
        });
        Ok(Issued {
            token: signer.sign(&claims)?,
            jti,
        })
    }

    /// Checks that a referenced object still exists with the token's UID.
    async fn check_object(
        &self,
        objects: &dyn ObjectGetter,
        resource: &str,
        namespace: Option<&str>,
        want: &ObjectRef,
        now: i64,
    ) -> Result<Value, AuthnError> {
        let invalidated =
            || AuthnError::Invalid("service account token has been invalidated".into());
        let obj = objects
            .get(resource, namespace, &want.name)
            .await
            .map_err(AuthnError::Invalid)?
            .ok_or_else(invalidated)?;
        let kind = resource.trim_end_matches('s');
        if meta::uid(&obj) != want.uid {
            return Err(AuthnError::Invalid(format!(
                "{kind} UID ({}) does not match service account {kind} ref claim ({})",
                meta::uid(&obj),
                want.uid
            )));
        }
        if deleted_before(&obj, now - LEEWAY_SECONDS) {
            return Err(invalidated());
        }
        Ok(obj)
    }
}

/// True when `obj` has a deletionTimestamp earlier than `cutoff` (Unix seconds).
fn deleted_before(obj: &Value, cutoff: i64) -> bool {
    meta::deletion_timestamp(obj)
        .and_then(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
        })
        .is_some_and(|t| t.unix_timestamp() < cutoff)
}

fn numeric_date(claims: &Value, name: &str) -> Option<i64> {
    let v = claims.get(name)?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// Go's `%q` of a string slice: `["a" "b"]`.
fn quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

/// The current Unix time.
pub fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[async_trait::async_trait]
impl TokenAuthenticator for ServiceAccounts {
    fn audience_aware(&self) -> bool {
        true
    }

    async fn authenticate_token(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Option<TokenResponse>, AuthnError> {
        // Only tokens naming one of our issuers are ours to judge.
        let Some(jws) = Jws::parse(token) else {
            return Ok(None);
        };
        let issuer = jws
            .peek_claims()
            .and_then(|c| c.get("iss").and_then(Value::as_str).map(str::to_owned));
        if !issuer.as_ref().is_some_and(|i| self.issuers.contains(i)) {
            return Ok(None);
        }
        let claims = jws.verify(&self.keys).map_err(AuthnError::Invalid)?;
        let issuer = claims.get("iss").and_then(Value::as_str).unwrap_or("");
        if !self.issuers.iter().any(|i| i == issuer) {
            return Err(AuthnError::Invalid(format!(
                "token issuer {issuer:?} is invalid"
            )));
        }

        // Audiences: the token's, intersected with what the caller accepts.
        let mut token_auds: Vec<String> = match claims.get("aud") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        if token_auds.is_empty() {
            token_auds = self.api_audiences.clone();
        }
        let requested: &[String] = if audiences.is_empty() {
            &self.api_audiences
        } else {
            audiences
        };
        let auds: Vec<String> = token_auds
            .iter()
            .filter(|a| requested.contains(a))
            .cloned()
            .collect();
        if auds.is_empty() && !self.api_audiences.is_empty() {
            return Err(AuthnError::Invalid(format!(
                "token audiences {} is invalid for the target audiences {}",
                quoted_list(&token_auds),
                quoted_list(requested)
            )));
        }

        // Lifetime, with upstream's leeway.
        let now = now_unix();
        if numeric_date(&claims, "exp").is_some_and(|exp| now - LEEWAY_SECONDS > exp) {
            return Err(AuthnError::Invalid(
                "service account token has expired".into(),
            ));
        }
        if numeric_date(&claims, "nbf").is_some_and(|nbf| now + LEEWAY_SECONDS < nbf) {
            return Err(AuthnError::Invalid(
                "service account token is not valid yet".into(),
            ));
        }
        if numeric_date(&claims, "iat").is_some_and(|iat| now + LEEWAY_SECONDS < iat) {
            return Err(AuthnError::Invalid(
                "service account token is issued in the future".into(),
            ));
        }

        // The objects the token names must still exist with the same UIDs.
        let private = claims.get("kubernetes.io").cloned().unwrap_or(Value::Null);
        let namespace = private
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let sa_ref = ObjectRef::from_claim(private.get("serviceaccount")).unwrap_or_default();
        if namespace.is_empty() || sa_ref.name.is_empty() {
            return Err(AuthnError::Invalid(
                "service account token claims could not be validated".into(),
            ));
        }
        let Some(objects) = self.objects.as_deref() else {
            return Err(AuthnError::Invalid(
                "service account token lookups are not configured".into(),
            ));
        };
        let sa = objects
            .get("serviceaccounts", Some(&namespace), &sa_ref.name)
            .await
            .map_err(AuthnError::Invalid)?
            .ok_or_else(|| {
                AuthnError::Invalid(format!("serviceaccounts \"{}\" not found", sa_ref.name))
            })?;
        if meta::uid(&sa) != sa_ref.uid {
            return Err(AuthnError::Invalid(format!(
                "service account UID ({}) does not match claim ({})",
                meta::uid(&sa),
                sa_ref.uid
            )));
        }
        if deleted_before(&sa, now - LEEWAY_SECONDS) {
            return Err(AuthnError::Invalid(format!(
                "service account {namespace}/{} has been deleted",
                sa_ref.name
            )));
        }
        let mut extra = std::collections::BTreeMap::new();
        if let Some(secret) = ObjectRef::from_claim(private.get("secret")) {
            self.check_object(objects, "secrets", Some(&namespace), &secret, now)
                .await?;
        }
        let pod = ObjectRef::from_claim(private.get("pod"));
        if let Some(pod) = &pod {
            self.check_object(objects, "pods", Some(&namespace), pod, now)
                .await?;
            extra.insert(EXTRA_POD_NAME.to_owned(), vec![pod.name.clone()]);
            extra.insert(EXTRA_POD_UID.to_owned(), vec![pod.uid.clone()]);
        }
        if let Some(node) = ObjectRef::from_claim(private.get("node")) {
            // A pod-bound token carries its node for information; a node-bound token
            // is valid only while that node exists.
            if pod.is_none() {
                self.check_object(objects, "nodes", None, &node, now)
                    .await?;
            }
            if !node.name.is_empty() {
                extra.insert(EXTRA_NODE_NAME.to_owned(), vec![node.name.clone()]);
                if !node.uid.is_empty() {
                    extra.insert(EXTRA_NODE_UID.to_owned(), vec![node.uid.clone()]);
                }
            }
        }
        if let Some(jti) = claims
            .get("jti")
            .and_then(Value::as_str)
            .filter(|j| !j.is_empty())
        {
            extra.insert(EXTRA_CREDENTIAL_ID.to_owned(), vec![format!("JTI={jti}")]);
        }
        Ok(Some(TokenResponse {
            user: UserInfo {
                name: format!("{USER_PREFIX}{namespace}:{}", sa_ref.name),
                uid: sa_ref.uid,
                groups: vec![ALL_GROUP.to_owned(), format!("{ALL_GROUP}:{namespace}")],
                extra,
            },
            audiences: auds,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// Objects in memory, by (resource, namespace, name).
    #[derive(Default)]
    struct Objects(Mutex<HashMap<(String, String, String), Value>>);

    impl Objects {
        fn put(&self, resource: &str, obj: Value) {
            let key = (
                resource.to_owned(),
                meta::namespace(&obj).to_owned(),
                meta::name(&obj).to_owned(),
            );
            self.0.lock().expect("lock").insert(key, obj);
        }
        fn remove(&self, resource: &str, ns: &str, name: &str) {
            self.0.lock().expect("lock").remove(&(
                resource.to_owned(),
                ns.to_owned(),
                name.to_owned(),
            ));
        }
    }

    #[async_trait::async_trait]
    impl ObjectGetter for Arc<Objects> {
        async fn get(
            &self,
            resource: &str,
            namespace: Option<&str>,
            name: &str,
        ) -> Result<Option<Value>, String> {
            let key = (
                resource.to_owned(),
                namespace.unwrap_or("").to_owned(),
                name.to_owned(),
            );
            Ok(self.0.lock().expect("lock").get(&key).cloned())
        }
    }

    fn setup() -> (ServiceAccounts, Arc<Objects>) {
        let key = SigningKey::from_pem(
            rcgen::KeyPair::generate()
                .expect("key")
                .serialize_pem()
                .as_bytes(),
        )
        .expect("key");
        let objects = Arc::new(Objects::default());
        let sas = ServiceAccounts::new(Settings {
            issuers: vec!["https://kubernetes.default.svc.cluster.local".into()],
            keys: vec![key.public_key().clone()],
            signer: Some(key),
            api_audiences: vec!["https://kubernetes.default.svc.cluster.local".into()],
            max_expiration_seconds: 0,
            extend_expiration: true,
            jwks_uri: None,
            objects: Some(Arc::new(objects.clone())),
        });
        objects.put(
            "serviceaccounts",
            json!({"metadata": {"name": "build", "namespace": "ci", "uid": "sa-uid"}}),
        );
        (sas, objects)
    }

    #[tokio::test]
    async fn issued_tokens_authenticate_as_the_service_account() {
        let (sas, _objects) = setup();
        let sa = json!({"metadata": {"name": "build", "namespace": "ci", "uid": "sa-uid"}});
        let issued = sas
            .issue(
                &sa,
                &Binding::default(),
                3600,
                0,
                sas.api_audiences(),
                now_unix(),
            )
            .expect("issue");
        let claims = Jws::parse(&issued.token)
            .expect("jws")
            .peek_claims()
            .expect("claims");
        assert_eq!(claims["sub"], "system:serviceaccount:ci:build");
        assert_eq!(claims["kubernetes.io"]["serviceaccount"]["uid"], "sa-uid");
        assert_eq!(claims["jti"], issued.jti.as_str());
        let resp = sas
            .authenticate_token(&issued.token, &[])
            .await
            .expect("ok")
            .expect("ours");
        assert_eq!(resp.user.name, "system:serviceaccount:ci:build");
        assert_eq!(
            resp.user.groups,
            vec!["system:serviceaccounts", "system:serviceaccounts:ci"]
        );
        assert_eq!(resp.user.uid, "sa-uid");
        assert_eq!(
            resp.user.extra[EXTRA_CREDENTIAL_ID],
            vec![format!("JTI={}", issued.jti)]
        );
        assert_eq!(resp.audiences, sas.api_audiences());
    }

    #[tokio::test]
    async fn refuses_expired_foreign_audience_and_orphaned_tokens() {
        let (sas, objects) = setup();
        let sa = json!({"metadata": {"name": "build", "namespace": "ci", "uid": "sa-uid"}});
        let now = now_unix();
        let expired = sas
            .issue(
                &sa,
                &Binding::default(),
                600,
                0,
                sas.api_audiences(),
                now - 700,
            )
            .expect("issue");
        assert_eq!(
            sas.authenticate_token(&expired.token, &[])
                .await
                .unwrap_err(),
            AuthnError::Invalid("service account token has expired".into())
        );
        let vault = sas
            .issue(&sa, &Binding::default(), 600, 0, &["vault".into()], now)
            .expect("issue");
        let e = sas.authenticate_token(&vault.token, &[]).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("token audiences [\"vault\"] is invalid"),
            "{e}"
        );
        let ok = sas
            .authenticate_token(&vault.token, &["vault".into()])
            .await
            .expect("ok")
            .expect("ours");
        assert_eq!(ok.audiences, vec!["vault"]);
        // Bound to a pod that goes away.
        objects.put(
            "pods",
            json!({"metadata": {"name": "web", "namespace": "ci", "uid": "pod-uid"}}),
        );
        let binding = Binding {
            pod: Some(ObjectRef {
                name: "web".into(),
                uid: "pod-uid".into(),
            }),
            node: Some(ObjectRef {
                name: "n1".into(),
                uid: String::new(),
            }),
            ..Default::default()
        };
        let bound = sas
            .issue(&sa, &binding, 600, 0, sas.api_audiences(), now)
            .expect("issue");
        let resp = sas
            .authenticate_token(&bound.token, &[])
            .await
            .expect("ok")
            .expect("ours");
        assert_eq!(resp.user.extra[EXTRA_POD_NAME], vec!["web"]);
        assert_eq!(resp.user.extra[EXTRA_NODE_NAME], vec!["n1"]);
        assert!(!resp.user.extra.contains_key(EXTRA_NODE_UID));
        objects.remove("pods", "ci", "web");
        assert_eq!(
            sas.authenticate_token(&bound.token, &[]).await.unwrap_err(),
            AuthnError::Invalid("service account token has been invalidated".into())
        );
        // The service account recreated with another UID.
        objects.put(
            "serviceaccounts",
            json!({"metadata": {"name": "build", "namespace": "ci", "uid": "new-uid"}}),
        );
        let plain = sas
            .issue(&sa, &Binding::default(), 600, 0, sas.api_audiences(), now)
            .expect("issue");
        assert_eq!(
            sas.authenticate_token(&plain.token, &[]).await.unwrap_err(),
            AuthnError::Invalid(
                "service account UID (new-uid) does not match claim (sa-uid)".into()
            )
        );
        objects.remove("serviceaccounts", "ci", "build");
        assert_eq!(
            sas.authenticate_token(&plain.token, &[]).await.unwrap_err(),
            AuthnError::Invalid("serviceaccounts \"build\" not found".into())
        );
        // Not ours: other issuers and non-JWTs get no opinion.
        assert!(sas
            .authenticate_token("not-a-jwt", &[])
            .await
            .expect("ok")
            .is_none());
    }
}
