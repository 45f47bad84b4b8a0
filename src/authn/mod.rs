//! Authentication: who sent a request. Authenticators are tried in order (client
//! certificates, then bearer tokens); the first that recognises the request decides.
//! Unrecognised requests are anonymous when `--anonymous-auth` allows it.
//!
//! Invariant: an authenticator either returns a user, refuses with 401 (credentials
//! presented but invalid), or has no opinion; it never partially authenticates.

use std::collections::BTreeMap;

use crate::server::PeerCertificates;

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

pub trait Authenticator: Send + Sync + 'static {
    fn authenticate(&self, creds: &Credentials<'_>) -> Result<Option<UserInfo>, AuthnError>;
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
            return Err(AuthnError::Invalid("client certificate without a common name".into()));
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
    pub authenticators: Vec<Box<dyn Authenticator>>,
    pub anonymous: bool,
}

impl Chain {
    /// The user, or None when the request must be refused with 401.
    pub fn authenticate(&self, creds: &Credentials<'_>) -> Result<Option<UserInfo>, AuthnError> {
        for a in &self.authenticators {
            if let Some(mut user) = a.authenticate(creds)? {
                if !user.in_group("system:authenticated") {
                    user.groups.push("system:authenticated".into());
                }
                return Ok(Some(user));
            }
        }
        if creds.bearer.is_some() {
            return Err(AuthnError::Invalid("invalid bearer token".into()));
        }
        Ok(if self.anonymous { Some(UserInfo::anonymous()) } else { None })
    }
}

/// The authenticator chain from the flags: client certificates first, then the
/// token authenticators configured.
pub fn build(kube: &crate::config::KubeConfig, _pki: &crate::pki::PkiPaths) -> Result<Chain, String> {
    Ok(Chain {
        authenticators: vec![Box::new(X509)],
        anonymous: kube.anonymous_auth,
    })
}
