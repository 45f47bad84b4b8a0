//! JSON Web Tokens in compact JWS form, signed and verified with ring: ES256 (P-256),
//! ES384 (P-384) and RS256 keys read from PEM files (PKCS#8, SEC1, PKCS#1, SPKI and
//! certificates), key ids derived as kube-apiserver derives them (base64url of the
//! SHA-256 of the PKIX public key), and public keys rendered as JWKs.
//!
//! Invariant: `Jws::verify` is the only way to get claims out of a token, and it
//! returns them only after the signature checked out against a key whose algorithm is
//! the one the token's header names; `peek_claims` reads unverified claims and is
//! used only to pick which authenticator should look at a token.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey};
use serde_json::{json, Value};
use x509_parser::prelude::FromDer;

/// A JWS signature algorithm this server signs and verifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    ES256,
    ES384,
    RS256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::RS256 => "RS256",
        }
    }
}

/// A public key that verifies tokens, with its key id.
#[derive(Clone, Debug)]
pub struct PublicKey {
    alg: Alg,
    key_id: String,
    /// DER SubjectPublicKeyInfo.
    spki: Vec<u8>,
    /// What ring verifies with: the uncompressed EC point, or the PKCS#1 RSAPublicKey.
    raw: Vec<u8>,
}

impl PublicKey {
    /// A key from its DER SubjectPublicKeyInfo.
    pub fn from_spki(der: &[u8]) -> Result<PublicKey, String> {
        let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(der)
            .map_err(|e| format!("parsing public key: {e}"))?;
        let raw = spki.subject_public_key.data.to_vec();
        let oid = &spki.algorithm.algorithm;
        let alg = if *oid == x509_parser::oid_registry::OID_PKCS1_RSAENCRYPTION {
            Alg::RS256
        } else if *oid == x509_parser::oid_registry::OID_KEY_TYPE_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .ok_or("EC public key without a named curve")?;
            if curve == x509_parser::oid_registry::OID_EC_P256 {
                Alg::ES256
            } else if curve == x509_parser::oid_registry::OID_NIST_EC_P384 {
                Alg::ES384
            } else {
                return Err(format!(
                    "unsupported EC curve {curve}: must be P-256 or P-384"
                ));
            }
        } else {
            return Err(format!(
                "unsupported public key algorithm {oid}: must be RSA or ECDSA"
            ));
        };
        Ok(PublicKey {
            alg,
            key_id: key_id(der),
            spki: der.to_vec(),
            raw,
        })
    }

    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// upstream's key id: base64url(SHA-256(PKIX DER)), unpadded.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key as a JWK (RFC 7517), as the OIDC JWKS endpoint serves it.
    pub fn jwk(&self) -> Value {
        let mut jwk = json!({"use": "sig", "kid": self.key_id, "alg": self.alg.name()});
        let parsed = x509_parser::x509::SubjectPublicKeyInfo::from_der(&self.spki)
            .ok()
            .and_then(|(_, spki)| spki.parsed().ok().map(|p| match p {
                x509_parser::public_key::PublicKey::RSA(rsa) => {
                    json!({"kty": "RSA", "n": b64url(strip_zeros(rsa.modulus)), "e": b64url(strip_zeros(rsa.exponent))})
                }
                x509_parser::public_key::PublicKey::EC(point) => {
                    let data = point.data();
                    let half = data.len().saturating_sub(1) / 2;
                    let crv = if self.alg == Alg::ES384 { "P-384" } else { "P-256" };
                    json!({
                        "kty": "EC",
                        "crv": crv,
                        "x": b64url(data.get(1..1 + half).unwrap_or_default()),
                        "y": b64url(data.get(1 + half..).unwrap_or_default()),
                    })
                }
                _ => json!({}),
            }));
        if let (Some(Value::Object(fields)), Some(out)) = (parsed, jwk.as_object_mut()) {
            out.extend(fields);
        }
        jwk
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            Alg::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            Alg::ES384 => &signature::ECDSA_P384_SHA384_FIXED,
            Alg::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        };
        UnparsedPublicKey::new(alg, &self.raw)
            .verify(message, sig)
            .is_ok()
    }
}

enum Signer {
    Ecdsa(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key that signs tokens.
pub struct SigningKey {
    signer: Signer,
    public: PublicKey,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("public", &self.public)
            .finish()
    }
}

impl SigningKey {
    /// The first private key in a PEM file: PKCS#8 (EC or RSA), SEC1 EC or PKCS#1 RSA.
    pub fn from_pem(pem: &[u8]) -> Result<SigningKey, String> {
        for block in pem_blocks(pem)? {
            match block.0.as_str() {
                "PRIVATE KEY" => return Self::from_pkcs8(&block.1),
                "EC PRIVATE KEY" => return Self::from_sec1(&block.1),
                "RSA PRIVATE KEY" => {
                    let pair = RsaKeyPair::from_der(&block.1)
                        .map_err(|e| format!("RSA private key: {e}"))?;
                    return Self::rsa(pair);
                }
                _ => continue,
            }
        }
        Err("no private key found (PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY)".into())
    }

    fn from_pkcs8(der: &[u8]) -> Result<SigningKey, String> {
        let rng = SystemRandom::new();
        for (alg, signing) in [
            (Alg::ES256, &signature::ECDSA_P256_SHA256_FIXED_SIGNING),
            (Alg::ES384, &signature::ECDSA_P384_SHA384_FIXED_SIGNING),
        ] {
            if let Ok(pair) = EcdsaKeyPair::from_pkcs8(signing, der, &rng) {
                return Self::ecdsa(alg, pair);
            }
        }
        let pair = RsaKeyPair::from_pkcs8(der)
            .map_err(|e| format!("private key is neither ECDSA P-256/P-384 nor RSA: {e}"))?;
        Self::rsa(pair)
    }

    /// SEC1 keys become PKCS#8 by wrapping them with the curve's algorithm identifier.
    fn from_sec1(der: &[u8]) -> Result<SigningKey, String> {
        for curve in [P256_OID_DER, P384_OID_DER] {
            let mut alg_id = Vec::new();
            alg_id.extend_from_slice(EC_PUBLIC_KEY_OID_DER);
            alg_id.extend_from_slice(curve);
            let mut body = vec![0x02, 0x01, 0x00];
            body.extend(der_tlv(0x30, &alg_id));
            body.extend(der_tlv(0x04, der));
            if let Ok(key) = Self::from_pkcs8(&der_tlv(0x30, &body)) {
                return Ok(key);
            }
        }
        Err("EC private key: not a P-256 or P-384 key with its public key".into())
    }

    fn ecdsa(alg: Alg, pair: EcdsaKeyPair) -> Result<SigningKey, String> {
        let point = pair.public_key().as_ref();
        let prefix = if alg == Alg::ES384 {
            P384_SPKI_PREFIX
        } else {
            P256_SPKI_PREFIX
        };
        let mut spki = prefix.to_vec();
        spki.extend_from_slice(point);
        Ok(SigningKey {
            public: PublicKey::from_spki(&spki)?,
            signer: Signer::Ecdsa(pair),
        })
    }

    fn rsa(pair: RsaKeyPair) -> Result<SigningKey, String> {
        let mut bits = vec![0u8];
        bits.extend_from_slice(pair.public().as_ref());
        let mut body = RSA_ALG_ID_DER.to_vec();
        body.extend(der_tlv(0x03, &bits));
        Ok(SigningKey {
            public: PublicKey::from_spki(&der_tlv(0x30, &body))?,
            signer: Signer::Rsa(pair),
        })
    }

    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// Signs `claims` into a compact JWS with header `{"alg": ..., "kid": ...}`.
    pub fn sign(&self, claims: &Value) -> Result<String, String> {
        let header = json!({"alg": self.public.alg.name(), "kid": self.public.key_id});
        let header = serde_json::to_vec(&header).map_err(|e| e.to_string())?;
        let payload = serde_json::to_vec(claims).map_err(|e| e.to_string())?;
        let input = format!("{}.{}", b64url(&header), b64url(&payload));
        let rng = SystemRandom::new();
        let sig = match &self.signer {
            Signer::Ecdsa(pair) => pair
                .sign(&rng, input.as_bytes())
                .map_err(|_| "ECDSA signing failed".to_owned())?
                .as_ref()
                .to_vec(),
            Signer::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &rng,
                    input.as_bytes(),
                    &mut sig,
                )
                .map_err(|_| "RSA signing failed".to_owned())?;
                sig
            }
        };
        Ok(format!("{input}.{}", b64url(&sig)))
    }
}

/// Every public key in a PEM file: public keys, certificates' keys, and the public
/// halves of private keys (as `--service-account-key-file` accepts them).
pub fn public_keys_from_pem(pem: &[u8]) -> Result<Vec<PublicKey>, String> {
    let mut keys = Vec::new();
    for (label, der) in pem_blocks(pem)? {
        match label.as_str() {
            "PUBLIC KEY" => keys.push(PublicKey::from_spki(&der)?),
            "RSA PUBLIC KEY" => {
                let mut bits = vec![0u8];
                bits.extend_from_slice(&der);
                let mut body = RSA_ALG_ID_DER.to_vec();
                body.extend(der_tlv(0x03, &bits));
                keys.push(PublicKey::from_spki(&der_tlv(0x30, &body))?);
            }
            "CERTIFICATE" => {
                let (_, cert) = x509_parser::parse_x509_certificate(&der)
                    .map_err(|e| format!("parsing certificate: {e}"))?;
                keys.push(PublicKey::from_spki(cert.public_key().raw)?);
            }
            "PRIVATE KEY" | "EC PRIVATE KEY" | "RSA PRIVATE KEY" => {
                let text = format!(
                    "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
                    base64::engine::general_purpose::STANDARD.encode(&der)
                );
                keys.push(SigningKey::from_pem(text.as_bytes())?.public);
            }
            _ => {}
        }
    }
    if keys.is_empty() {
        return Err("no public key found".into());
    }
    Ok(keys)
}

/// A structurally valid compact JWS whose signature is not yet checked.
pub struct Jws {
    header: Value,
    payload: Vec<u8>,
    signing_input_len: usize,
    token: String,
    signature: Vec<u8>,
}

impl Jws {
    /// Splits and decodes a compact JWS; None when it is not one.
    pub fn parse(token: &str) -> Option<Jws> {
        let token = token.trim();
        if token.starts_with('{') {
            return None;
        }
        let mut parts = token.split('.');
        let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
        let payload = URL_SAFE_NO_PAD.decode(p).ok()?;
        let signature = URL_SAFE_NO_PAD.decode(s).ok()?;
        Some(Jws {
            header,
            payload,
            signing_input_len: h.len() + 1 + p.len(),
            token: token.to_owned(),
            signature,
        })
    }

    /// The claims without checking the signature: only to route the token.
    pub fn peek_claims(&self) -> Option<Value> {
        serde_json::from_slice(&self.payload).ok()
    }

    /// The `kid` header, if any.
    pub fn key_id(&self) -> Option<&str> {
        self.header
            .get("kid")
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty())
    }

    /// The claims, once the signature verifies against one of `keys` (those with the
    /// token's key id when it names one).
    pub fn verify(&self, keys: &[PublicKey]) -> Result<Value, String> {
        let alg = self.header.get("alg").and_then(Value::as_str).unwrap_or("");
        let candidates: Vec<&PublicKey> = keys
            .iter()
            .filter(|k| self.key_id().is_none_or(|kid| kid == k.key_id))
            .collect();
        if candidates.is_empty() {
            return Err("invalid signature, no keys found".into());
        }
        let input = &self.token.as_bytes()[..self.signing_input_len];
        for key in candidates {
            if key.alg.name() == alg && key.verify(input, &self.signature) {
                return serde_json::from_slice(&self.payload)
                    .map_err(|e| format!("token payload is not JSON: {e}"));
            }
        }
        Err("invalid signature".into())
    }
}

/// Unpadded base64url.
pub fn b64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

fn key_id(spki_der: &[u8]) -> String {
    b64url(ring::digest::digest(&ring::digest::SHA256, spki_der).as_ref())
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let first = b
        .iter()
        .position(|x| *x != 0)
        .unwrap_or(b.len().saturating_sub(1));
    &b[first..]
}

/// (label, DER contents) of every PEM block.
fn pem_blocks(pem: &[u8]) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    for block in x509_parser::pem::Pem::iter_from_buffer(pem) {
        let block = block.map_err(|e| format!("reading PEM: {e}"))?;
        out.push((block.label, block.contents));
    }
    Ok(out)
}

/// DER tag-length-value.
fn der_tlv(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = value.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend_from_slice(value);
    out
}

/// OID 1.2.840.10045.2.1 (id-ecPublicKey), DER.
const EC_PUBLIC_KEY_OID_DER: &[u8] = &[0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// OID 1.2.840.10045.3.1.7 (prime256v1), DER.
const P256_OID_DER: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// OID 1.3.132.0.34 (secp384r1), DER.
const P384_OID_DER: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];
/// AlgorithmIdentifier { rsaEncryption, NULL }, DER.
const RSA_ALG_ID_DER: &[u8] = &[
    0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01, 0x05, 0x00,
];
/// A P-256 SubjectPublicKeyInfo up to the 65-byte uncompressed point.
const P256_SPKI_PREFIX: &[u8] = &[
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// A P-384 SubjectPublicKeyInfo up to the 97-byte uncompressed point.
const P384_SPKI_PREFIX: &[u8] = &[
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b,
    0x81, 0x04, 0x00, 0x22, 0x03, 0x62, 0x00,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn p256_pem() -> String {
        rcgen::KeyPair::generate().expect("key").serialize_pem()
    }

    #[test]
    fn signs_and_verifies_es256_with_upstream_key_ids() {
        let key = SigningKey::from_pem(p256_pem().as_bytes()).expect("key");
        assert_eq!(key.public_key().alg(), Alg::ES256);
        let token = key.sign(&json!({"sub": "me", "n": 1})).expect("sign");
        let jws = Jws::parse(&token).expect("jws");
        assert_eq!(jws.key_id(), Some(key.public_key().key_id()));
        let claims = jws
            .verify(std::slice::from_ref(key.public_key()))
            .expect("verifies");
        assert_eq!(claims["sub"], "me");
        // The key id is the SHA-256 of the PKIX DER, base64url without padding (43 chars).
        assert_eq!(key.public_key().key_id().len(), 43);
        // The public PEM rcgen writes yields the same key and id.
        let kp = rcgen::KeyPair::from_pem(&p256_pem()).expect("pair");
        let signing = SigningKey::from_pem(kp.serialize_pem().as_bytes()).expect("signing");
        let public = public_keys_from_pem(kp.public_key_pem().as_bytes()).expect("public");
        assert_eq!(public[0].key_id(), signing.public_key().key_id());
        let jwk = signing.public_key().jwk();
        assert_eq!(jwk["kty"], "EC");
        assert_eq!(jwk["crv"], "P-256");
        assert_eq!(
            URL_SAFE_NO_PAD
                .decode(jwk["x"].as_str().expect("x"))
                .expect("b64")
                .len(),
            32
        );
    }

    #[test]
    fn refuses_other_keys_tampering_and_alg_swaps() {
        let key = SigningKey::from_pem(p256_pem().as_bytes()).expect("key");
        let other = SigningKey::from_pem(p256_pem().as_bytes()).expect("other");
        let token = key.sign(&json!({"sub": "me"})).expect("sign");
        let jws = Jws::parse(&token).expect("jws");
        assert_eq!(
            jws.verify(std::slice::from_ref(other.public_key()))
                .unwrap_err(),
            "invalid signature, no keys found"
        );
        // The signature covers the header: dropping the kid breaks it for every key.
        let parts: Vec<&str> = token.split('.').collect();
        let bare = format!(
            "{}.{}.{}",
            b64url(br#"{"alg":"ES256"}"#),
            parts[1],
            parts[2]
        );
        let both = [other.public_key().clone(), key.public_key().clone()];
        assert_eq!(
            Jws::parse(&bare).expect("jws").verify(&both).unwrap_err(),
            "invalid signature"
        );
        // A changed payload does not verify.
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            b64url(br#"{"sub":"admin"}"#),
            parts[2]
        );
        assert!(Jws::parse(&forged)
            .expect("jws")
            .verify(std::slice::from_ref(key.public_key()))
            .is_err());
        // alg none is never accepted.
        let none = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), parts[1]);
        assert!(Jws::parse(&none)
            .expect("jws")
            .verify(std::slice::from_ref(key.public_key()))
            .is_err());
        assert!(Jws::parse("garbage").is_none());
        assert!(Jws::parse("a.b.c.d").is_none());
    }

    #[test]
    fn reads_sec1_and_p384_keys() {
        // The ECPrivateKey inside a PKCS#8 document is a SEC1 key ("EC PRIVATE KEY").
        let pair = rcgen::KeyPair::generate().expect("key");
        let pkcs8 = pair.serialize_der();
        let (_, doc) = x509_parser::der_parser::parse_der(&pkcs8).expect("der");
        let seq = doc.as_sequence().expect("sequence");
        let sec1 = seq[2].as_slice().expect("octet string");
        let pem = format!(
            "-----BEGIN EC PRIVATE KEY-----\n{}\n-----END EC PRIVATE KEY-----\n",
            base64::engine::general_purpose::STANDARD.encode(sec1)
        );
        let from_sec1 = SigningKey::from_pem(pem.as_bytes()).expect("sec1 key");
        let from_pkcs8 = SigningKey::from_pem(pair.serialize_pem().as_bytes()).expect("pkcs8 key");
        assert_eq!(
            from_sec1.public_key().key_id(),
            from_pkcs8.public_key().key_id()
        );
        assert!(SigningKey::from_pem(
            b"-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n"
        )
        .is_err());
        let p384 = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).expect("p384");
        let key = SigningKey::from_pem(p384.serialize_pem().as_bytes()).expect("p384 key");
        assert_eq!(key.public_key().alg(), Alg::ES384);
        let token = key.sign(&json!({"a": 1})).expect("sign");
        let public = public_keys_from_pem(p384.public_key_pem().as_bytes()).expect("pub");
        assert!(Jws::parse(&token).expect("jws").verify(&public).is_ok());
        assert_eq!(public[0].jwk()["crv"], "P-384");
    }
}
