//! Authentication: who sent a request. Client certificates are looked at first, then
//! a bearer token is offered to the token authenticators in order (`--token-auth-file`,
//! service-account JWTs); the first that recognises the request decides. Requests
//! with no credentials are anonymous when `--anonymous-auth` allows it.
//!
//! Invariant: an authenticator either returns a user, refuses (credentials presented
//! but invalid: 401), or has no opinion; it never partially authenticates. A bearer
//! token nobody accepts is refused, never treated as anonymous.

pub mod jwt;
pub mod oidc;
pub mod service_account;
pub mod token_file;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::server::PeerCertificates;

pub use oidc::oidc_router;
pub use service_account::{ObjectGetter, ServiceAccounts};

/// The group every authenticated user is in.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The default `--service-account-issuer` (kubeadm's).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// The authenticated user (authentication.k8s.io UserInfo).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: "system:anonymous".into(),
            groups: vec!["system:unauthenticated".into()],
            ..Default::default()
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// authentication.k8s.io/v1 UserInfo as JSON (empty fields omitted).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        if !self.name.is_empty() {
            m.insert("username".into(), self.name.clone().into());
        }
        if !self.uid.is_empty() {
            m.insert("uid".into(), self.uid.clone().into());
        }
        if !self.groups.is_empty() {
            m.insert("groups".into(), serde_json::json!(self.groups));
        }
        if !self.extra.is_empty() {
            m.insert("extra".into(), serde_json::json!(self.extra));
        }
        serde_json::Value::Object(m)
    }
}

/// What authenticators look at.
pub struct Credentials<'a> {
    pub certs: Option<&'a PeerCertificates>,
    pub bearer: Option<&'a str>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthnError {
    /// Credentials were presented and are not valid.
    #[error("{0}")]
    Invalid(String),
}

/// Authenticates from the connection (client certificates).
pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(&self, creds: &Credentials<'_>) -> Result<Option<UserInfo>, AuthnError>;
}

/// What a token authenticator found: the user, and the audiences the token is good for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenResponse {
    pub user: UserInfo,
    pub audiences: Vec<String>,
}

/// Authenticates bearer tokens.
#[async_trait::async_trait]
pub trait TokenAuthenticator: Send + Sync + 'static {
    /// `audiences` are those the caller accepts (never empty when API audiences are
    /// configured). None: not this authenticator's token.
    async fn authenticate_token(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Option<TokenResponse>, AuthnError>;

    /// False for authenticators whose tokens carry no audience (a token file): the
    /// chain accepts them for the API audiences only.
    fn audience_aware(&self) -> bool {
        false
    }
}

/// Client certificates: CN is the user name, O values are the groups (the TLS layer
/// already verified the chain against `--client-ca-file`).
pub struct X509;

impl Authenticator for X509 {
    fn authenticate(&self, creds: &Credentials<'_>) -> Result<Option<UserInfo>, AuthnError> {
        let Some(leaf) = creds.certs.and_then(|c| c.0.first()) else {
            return Ok(None);
        };
        let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref())
            .map_err(|e| AuthnError::Invalid(format!("unparsable client certificate: {e}")))?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .unwrap_or("")
            .to_owned();
        if name.is_empty() {
            return Err(AuthnError::Invalid(
                "client certificate without a common name".into(),
            ));
        }
        let groups = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok().map(str::to_owned))
            .collect();
        Ok(Some(UserInfo {
            name,
            groups,
            ..Default::default()
        }))
    }
}

/// The authenticator chain.
pub struct Chain {
    request: Vec<Box<dyn Authenticator>>,
    tokens: Vec<Arc<dyn TokenAuthenticator>>,
    service_accounts: Option<Arc<ServiceAccounts>>,
    api_audiences: Vec<String>,
    anonymous: bool,
}

impl Chain {
    /// The user of a request, None when it must be refused with 401.
    pub async fn authenticate_request(
        &self,
        creds: &Credentials<'_>,
    ) -> Result<Option<UserInfo>, AuthnError> {
        for a in &self.request {
            if let Some(user) = a.authenticate(creds)? {
                return Ok(Some(with_authenticated_group(user)));
            }
        }
        if let Some(token) = creds.bearer {
            return match self.authenticate_token(token, &[]).await? {
                Some(resp) => Ok(Some(resp.user)),
                None => Err(AuthnError::Invalid("invalid bearer token".into())),
            };
        }
        Ok(if self.anonymous {
            Some(UserInfo::anonymous())
        } else {
            None
        })
    }

    /// A bearer token, as TokenReview asks: `audiences` empty means the API
    /// audiences. The user is in `system:authenticated`; the response's audiences are
    /// those the token is good for among the ones asked.
    pub async fn authenticate_token(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Option<TokenResponse>, AuthnError> {
        let requested: &[String] = if audiences.is_empty() {
            &self.api_audiences
        } else {
            audiences
        };
        let mut errors = Vec::new();
        for a in &self.tokens {
            let found = if a.audience_aware() || self.api_audiences.is_empty() {
                a.authenticate_token(token, requested).await
            } else {
                let auds: Vec<String> = self
                    .api_audiences
                    .iter()
                    .filter(|x| requested.contains(x))
                    .cloned()
                    .collect();
                if auds.is_empty() {
                    Ok(None)
                } else {
                    a.authenticate_token(token, requested).await.map(|r| {
                        r.map(|mut r| {
                            r.audiences = auds;
                            r
                        })
                    })
                }
            };
            match found {
                Ok(Some(mut resp)) => {
                    resp.user = with_authenticated_group(resp.user);
                    return Ok(Some(resp));
                }
                Ok(None) => {}
                Err(AuthnError::Invalid(e)) => errors.push(e),
            }
        }
        match errors.len() {
            0 => Ok(None),
            1 => Err(AuthnError::Invalid(errors.remove(0))),
            _ => Err(AuthnError::Invalid(format!("[{}]", errors.join(", ")))),
        }
    }

    /// The service-account token issuer, when one is configured.
    pub fn service_accounts(&self) -> Option<&Arc<ServiceAccounts>> {
        self.service_accounts.as_ref()
    }

    /// `--api-audiences` (default: the service-account issuers).
    pub fn api_audiences(&self) -> &[String] {
        &self.api_audiences
    }
}

fn with_authenticated_group(mut user: UserInfo) -> UserInfo {
    if !user.in_group(AUTHENTICATED_GROUP) {
        user.groups.push(AUTHENTICATED_GROUP.into());
    }
    user
}

/// Authentication settings, named after kube-apiserver's flags.
#[derive(Clone, Debug)]
pub struct AuthnOptions {
    /// `--anonymous-auth`.
    pub anonymous: bool,
    /// `--token-auth-file`.
    pub token_auth_file: Option<PathBuf>,
    /// `--service-account-issuer` (repeatable): the first is written into new tokens,
    /// all are accepted.
    pub service_account_issuers: Vec<String>,
    /// `--service-account-key-file` (repeatable): PEM files with the public keys that
    /// verify tokens; empty means the signing key's public key.
    pub service_account_key_files: Vec<PathBuf>,
    /// `--service-account-signing-key-file`; None means the PKI's `sa.key`.
    pub service_account_signing_key_file: Option<PathBuf>,
    /// `--service-account-max-token-expiration`; None means no maximum.
    pub service_account_max_token_expiration: Option<Duration>,
    /// `--service-account-extend-token-expiration` (default true).
    pub service_account_extend_token_expiration: bool,
    /// `--service-account-jwks-uri`; None means https://<external address>/openid/v1/jwks.
    pub service_account_jwks_uri: Option<String>,
    /// `--api-audiences`; empty means the service-account issuers.
    pub api_audiences: Vec<String>,
}

impl Default for AuthnOptions {
    fn default() -> Self {
        AuthnOptions {
            anonymous: true,
            token_auth_file: None,
            service_account_issuers: vec![DEFAULT_ISSUER.to_owned()],
            service_account_key_files: Vec::new(),
            service_account_signing_key_file: None,
            service_account_max_token_expiration: None,
            service_account_extend_token_expiration: true,
            service_account_jwks_uri: None,
            api_audiences: Vec::new(),
        }
    }
}

impl AuthnOptions {
    /// The options from the replica's configuration; flags it does not carry keep
    /// their kube-apiserver defaults.
    pub fn from_kube(kube: &crate::config::KubeConfig) -> AuthnOptions {
        kube.authn.clone()
    }

    /// The checks kube-apiserver makes on these flags.
    pub fn validate(&self) -> Result<(), String> {
        if self.service_account_issuers.iter().any(|i| i.is_empty()) {
            return Err("service-account-issuer should not be an empty string".into());
        }
        if self.service_account_issuers.is_empty() {
            return Err("service-account-issuer is a required flag".into());
        }
        for (i, a) in self.service_account_issuers.iter().enumerate() {
            if self.service_account_issuers[..i].contains(a) {
                return Err(format!("service-account-issuer {a:?} is already specified"));
            }
            if a.contains(':') {
                a.parse::<http::Uri>().map_err(|e| {
                    format!(
                        "service-account-issuer {a:?} contained a ':' but was not a valid URL: {e}"
                    )
                })?;
            }
        }
        if let Some(max) = self.service_account_max_token_expiration {
            if max < Duration::from_secs(3600) || max > Duration::from_secs(1 << 32) {
                return Err("the service-account-max-token-expiration must be between 1 hour and 2^32 seconds".into());
            }
        }
        Ok(())
    }

    /// The API audiences in effect.
    pub fn effective_api_audiences(&self) -> Vec<String> {
        if self.api_audiences.is_empty() {
            self.service_account_issuers.clone()
        } else {
            self.api_audiences.clone()
        }
    }
}

/// The authenticator chain: client certificates first, then the token file, then
/// service-account tokens (verified against `objects`).
pub fn build_with(
    opts: &AuthnOptions,
    pki: &crate::pki::PkiPaths,
    objects: Option<Arc<dyn ObjectGetter>>,
) -> Result<Chain, String> {
    opts.validate()?;
    let api_audiences = opts.effective_api_audiences();
    let mut tokens: Vec<Arc<dyn TokenAuthenticator>> = Vec::new();
    if let Some(path) = &opts.token_auth_file {
        let file = token_file::TokenFile::load(path)?;
        tracing::info!(path = %path.display(), users = file.len(), "token auth file loaded");
        tokens.push(Arc::new(file));
    }

    // Service-account keys: the signing key (an explicit file must load; the PKI's
    // default is used when present), and the verification keys.
    let read = |p: &PathBuf| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let signer = match &opts.service_account_signing_key_file {
        Some(p) => Some(
            jwt::SigningKey::from_pem(&read(p)?).map_err(|e| format!("{}: {e}", p.display()))?,
        ),
        None if pki.sa_key().exists() => Some(
            jwt::SigningKey::from_pem(&read(&pki.sa_key())?)
                .map_err(|e| format!("{}: {e}", pki.sa_key().display()))?,
        ),
        None => None,
    };
    let mut keys = Vec::new();
    for p in &opts.service_account_key_files {
        keys.extend(
            jwt::public_keys_from_pem(&read(p)?).map_err(|e| format!("{}: {e}", p.display()))?,
        );
    }
    if keys.is_empty() {
        if let Some(s) = &signer {
            keys.push(s.public_key().clone());
        }
    }
    let service_accounts = if keys.is_empty() {
        tracing::warn!(
            "no service account keys: service account tokens are neither issued nor accepted"
        );
        None
    } else {
        let max = opts
            .service_account_max_token_expiration
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let sas = Arc::new(ServiceAccounts::new(service_account::Settings {
            issuers: opts.service_account_issuers.clone(),
            signer,
            keys,
            api_audiences: api_audiences.clone(),
            max_expiration_seconds: max,
            extend_expiration: opts.service_account_extend_token_expiration,
            jwks_uri: opts.service_account_jwks_uri.clone(),
            objects,
        }));
        tokens.push(sas.clone());
        Some(sas)
    };
    Ok(Chain {
        request: vec![Box::new(X509)],
        tokens,
        service_accounts,
        api_audiences,
        anonymous: opts.anonymous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain_with_token_file(text: &str) -> Chain {
        Chain {
            request: vec![Box::new(X509)],
            tokens: vec![Arc::new(
                token_file::TokenFile::parse(text, "t.csv").expect("parse"),
            )],
            service_accounts: None,
            api_audiences: vec![DEFAULT_ISSUER.to_owned()],
            anonymous: true,
        }
    }

    #[tokio::test]
    async fn bearer_tokens_authenticate_or_are_refused_never_anonymous() {
        let chain = chain_with_token_file("s3cret,alice,42,devs\n");
        let user = chain
            .authenticate_request(&Credentials {
                certs: None,
                bearer: Some("s3cret"),
            })
            .await
            .expect("ok")
            .expect("user");
        assert_eq!(user.name, "alice");
        assert_eq!(user.groups, vec!["devs", "system:authenticated"]);
        let refused = chain
            .authenticate_request(&Credentials {
                certs: None,
                bearer: Some("wrong"),
            })
            .await;
        assert_eq!(
            refused,
            Err(AuthnError::Invalid("invalid bearer token".into()))
        );
        let anon = chain
            .authenticate_request(&Credentials {
                certs: None,
                bearer: None,
            })
            .await
            .expect("ok")
            .expect("anonymous");
        assert_eq!(anon.name, "system:anonymous");
    }

    #[tokio::test]
    async fn audience_agnostic_tokens_are_good_for_the_api_audiences_only() {
        let chain = chain_with_token_file("s3cret,alice,42\n");
        let api = chain
            .authenticate_token("s3cret", &[])
            .await
            .expect("ok")
            .expect("user");
        assert_eq!(api.audiences, vec![DEFAULT_ISSUER]);
        let other = chain
            .authenticate_token("s3cret", &["vault".into()])
            .await
            .expect("ok");
        assert!(other.is_none());
    }

    #[test]
    fn options_follow_kube_apiserver_validation() {
        let mut o = AuthnOptions::default();
        assert!(o.validate().is_ok());
        assert_eq!(o.effective_api_audiences(), vec![DEFAULT_ISSUER]);
        o.service_account_max_token_expiration = Some(Duration::from_secs(60));
        assert!(o
            .validate()
            .unwrap_err()
            .contains("between 1 hour and 2^32 seconds"));
        o.service_account_max_token_expiration = None;
        o.service_account_issuers = vec![String::new()];
        assert!(o.validate().is_err());
    }
}
