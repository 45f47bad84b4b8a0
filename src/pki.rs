//! The cluster's PKI, kubeadm-style: a CA, the API server's serving certificate, an
//! admin client certificate (CN kubernetes-admin, O system:masters), peer and etcd
//! certificates, the service-account signing key, and the admin kubeconfig.
//!
//! Invariant: existing files are never overwritten; missing ones are created from the
//! CA that is there, so one `kuberaft certs` run serves every replica of a cluster and
//! a replica's first start completes, rather than replaces, its PKI.

use std::fs;
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("generating certificates: {0}")]
    Generate(String),
}

fn gen_err(e: rcgen::Error) -> PkiError {
    PkiError::Generate(e.to_string())
}

/// The files of a PKI directory.
#[derive(Clone, Debug)]
pub struct PkiPaths {
    pub dir: PathBuf,
}

impl PkiPaths {
    pub fn new(dir: &Path) -> Self {
        PkiPaths {
            dir: dir.to_owned(),
        }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn serving_cert(&self) -> PathBuf {
        self.dir.join("apiserver.crt")
    }
    pub fn serving_key(&self) -> PathBuf {
        self.dir.join("apiserver.key")
    }
    pub fn admin_cert(&self) -> PathBuf {
        self.dir.join("admin.crt")
    }
    pub fn admin_key(&self) -> PathBuf {
        self.dir.join("admin.key")
    }
    /// Peer certificate: server and client auth, for the Raft peer port.
    pub fn peer_cert(&self) -> PathBuf {
        self.dir.join("peer.crt")
    }
    pub fn peer_key(&self) -> PathBuf {
        self.dir.join("peer.key")
    }
    /// Service-account token signing key (ECDSA P-256, PKCS#8) and its public key.
    pub fn sa_key(&self) -> PathBuf {
        self.dir.join("sa.key")
    }
    pub fn sa_pub(&self) -> PathBuf {
        self.dir.join("sa.pub")
    }
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.join("admin.kubeconfig")
    }
}

fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), PkiError> {
    let err = |source| PkiError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    {
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(if private { 0o600 } else { 0o644 });
        }
        let mut f = opts.open(&tmp).map_err(err)?;
        f.write_all(contents).map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    fs::rename(&tmp, path).map_err(err)
}

fn read(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Io {
        path: path.to_owned(),
        source,
    })
}

fn name(cn: &str, org: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    if let Some(o) = org {
        dn.push(DnType::OrganizationName, o);
    }
    dn
}

fn validity(params: &mut CertificateParams, years: i64) {
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(365 * years);
}

fn sans(hosts: &[String]) -> Vec<SanType> {
    let mut out = Vec::new();
    for h in hosts {
        let h = h.trim();
        if h.is_empty() {
            continue;
        }
        let san = match h.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => match h.to_owned().try_into() {
                Ok(dns) => SanType::DnsName(dns),
                Err(_) => continue,
            },
        };
        if !out.contains(&san) {
            out.push(san);
        }
    }
    out
}

/// What to create: the hosts the serving and peer certificates must name, and the
/// API server URL the admin kubeconfig points at.
#[derive(Clone, Debug)]
pub struct PkiRequest {
    pub hosts: Vec<String>,
    pub server: String,
}

/// The host names every serving certificate carries.
pub fn default_hosts(service_ip: Option<IpAddr>) -> Vec<String> {
    let mut hosts = vec![
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
        "localhost".to_owned(),
        "kubernetes".to_owned(),
        "kubernetes.default".to_owned(),
        "kubernetes.default.svc".to_owned(),
        "kubernetes.default.svc.cluster.local".to_owned(),
    ];
    if let Ok(h) = fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            hosts.push(h.to_owned());
        }
    }
    if let Some(ip) = service_ip {
        hosts.push(ip.to_string());
    }
    hosts
}

/// Creates whatever is missing in `paths.dir`; returns the paths.
pub fn ensure(paths: &PkiPaths, req: &PkiRequest) -> Result<PkiPaths, PkiError> {
    fs::create_dir_all(&paths.dir).map_err(|source| PkiError::Io {
        path: paths.dir.clone(),
        source,
    })?;
    // The CA.
    if !paths.ca_cert().exists() || !paths.ca_key().exists() {
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
        params.distinguished_name = name("kuberaft-ca", None);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, 10);
        let cert = params.self_signed(&key).map_err(gen_err)?;
        write_file(&paths.ca_key(), key.serialize_pem().as_bytes(), true)?;
        write_file(&paths.ca_cert(), cert.pem().as_bytes(), false)?;
    }
    let ca_key = KeyPair::from_pem(&read(&paths.ca_key())?).map_err(gen_err)?;
    let ca_pem = read(&paths.ca_cert())?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(gen_err)?;

    let leaf =
        |cn: &str, org: Option<&str>, hosts: &[String], usages: Vec<ExtendedKeyUsagePurpose>| {
            let key = KeyPair::generate().map_err(gen_err)?;
            let mut params = CertificateParams::new(Vec::<String>::new()).map_err(gen_err)?;
            params.distinguished_name = name(cn, org);
            params.subject_alt_names = sans(hosts);
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = usages;
            validity(&mut params, 1);
            let cert = params.signed_by(&key, &issuer).map_err(gen_err)?;
            Ok::<_, PkiError>((cert.pem(), key.serialize_pem()))
        };

    if !paths.serving_cert().exists() || !paths.serving_key().exists() {
        let (cert, key) = leaf(
            "kube-apiserver",
            None,
            &req.hosts,
            vec![ExtendedKeyUsagePurpose::ServerAuth],
        )?;
        write_file(&paths.serving_key(), key.as_bytes(), true)?;
        write_file(&paths.serving_cert(), cert.as_bytes(), false)?;
    }
    if !paths.peer_cert().exists() || !paths.peer_key().exists() {
        let (cert, key) = leaf(
            "kuberaft-peer",
            None,
            &req.hosts,
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )?;
        write_file(&paths.peer_key(), key.as_bytes(), true)?;
        write_file(&paths.peer_cert(), cert.as_bytes(), false)?;
    }
    if !paths.admin_cert().exists() || !paths.admin_key().exists() {
        let (cert, key) = leaf(
            "kubernetes-admin",
            Some("system:masters"),
            &[],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )?;
        write_file(&paths.admin_key(), key.as_bytes(), true)?;
        write_file(&paths.admin_cert(), cert.as_bytes(), false)?;
    }
    if !paths.sa_key().exists() || !paths.sa_pub().exists() {
        let key = KeyPair::generate().map_err(gen_err)?;
        write_file(&paths.sa_key(), key.serialize_pem().as_bytes(), true)?;
        write_file(&paths.sa_pub(), key.public_key_pem().as_bytes(), false)?;
    }
    if !paths.admin_kubeconfig().exists() {
        let config = kubeconfig(
            &req.server,
            &ca_pem,
            &read(&paths.admin_cert())?,
            &read(&paths.admin_key())?,
            "kubernetes-admin",
        );
        write_file(&paths.admin_kubeconfig(), config.as_bytes(), true)?;
    }
    Ok(paths.clone())
}

fn b64(data: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(data.as_bytes())
}

/// A kubeconfig with one cluster, one user (client certificate) and one context.
pub fn kubeconfig(server: &str, ca_pem: &str, cert_pem: &str, key_pem: &str, user: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kuberaft
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {user}@kuberaft
  context:
    cluster: kuberaft
    user: {user}
current-context: {user}@kuberaft
preferences: {{}}
",
        ca = b64(ca_pem),
        cert = b64(cert_pem),
        key = b64(key_pem),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_creates_a_pki_once_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("tmp");
        let paths = PkiPaths::new(dir.path());
        let req = PkiRequest {
            hosts: vec!["127.0.0.1".into(), "localhost".into()],
            server: "https://127.0.0.1:6443".into(),
        };
        ensure(&paths, &req).expect("first");
        let ca = std::fs::read(paths.ca_cert()).expect("ca");
        let admin = std::fs::read(paths.admin_cert()).expect("admin");
        std::fs::remove_file(paths.serving_cert()).expect("rm");
        ensure(&paths, &req).expect("second");
        assert_eq!(std::fs::read(paths.ca_cert()).expect("ca"), ca, "CA kept");
        assert_eq!(
            std::fs::read(paths.admin_cert()).expect("admin"),
            admin,
            "admin cert kept"
        );
        assert!(
            paths.serving_cert().exists(),
            "missing serving cert recreated"
        );
        // The serving certificate chains to the CA and names the hosts.
        let pem = std::fs::read(paths.serving_cert()).expect("serving");
        let (_, der) = x509_parser::pem::parse_x509_pem(&pem).expect("pem");
        let cert = der.parse_x509().expect("x509");
        let san = cert.subject_alternative_name().expect("ext").expect("san");
        assert!(format!("{:?}", san.value).contains("localhost"));
        let kc = std::fs::read_to_string(paths.admin_kubeconfig()).expect("kubeconfig");
        assert!(kc.contains("server: https://127.0.0.1:6443"));
    }
}
