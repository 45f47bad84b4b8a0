//! authentication.k8s.io/v1 (TokenReview, SelfSubjectReview) and
//! authorization.k8s.io/v1 (SubjectAccessReview, SelfSubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectRulesReview): the review kinds. They are
//! registered so discovery lists them and bodies are type-checked; `apiserver/reviews.rs`
//! answers them from the authenticator and authorizer chains.
//!
//! Invariant: create is their only verb and nothing is ever stored under them (the
//! review handler answers before the generic store is reached).

use std::sync::Arc;

use k8s_openapi::api::authentication::v1 as authn;
use k8s_openapi::api::authorization::v1 as authz;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::registry::typed::Typed;
use crate::registry::validation::NameRule;
use crate::registry::{Resource, Strategy};

pub const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";
pub const AUTHORIZATION_GROUP: &str = "authorization.k8s.io";

pub fn resources() -> Vec<Resource> {
    vec![
        review::<authn::SelfSubjectReview>(
            AUTHENTICATION_GROUP,
            "SelfSubjectReview",
            "selfsubjectreviews",
            false,
        ),
        review::<authn::TokenReview>(AUTHENTICATION_GROUP, "TokenReview", "tokenreviews", false),
        review::<authz::LocalSubjectAccessReview>(
            AUTHORIZATION_GROUP,
            "LocalSubjectAccessReview",
            "localsubjectaccessreviews",
            true,
        ),
        review::<authz::SelfSubjectAccessReview>(
            AUTHORIZATION_GROUP,
            "SelfSubjectAccessReview",
            "selfsubjectaccessreviews",
            false,
        ),
        review::<authz::SelfSubjectRulesReview>(
            AUTHORIZATION_GROUP,
            "SelfSubjectRulesReview",
            "selfsubjectrulesreviews",
            false,
        ),
        review::<authz::SubjectAccessReview>(
            AUTHORIZATION_GROUP,
            "SubjectAccessReview",
            "subjectaccessreviews",
            false,
        ),
    ]
}

fn review<T: DeserializeOwned + Serialize + 'static>(
    group: &'static str,
    kind: &'static str,
    resource: &'static str,
    namespaced: bool,
) -> Resource {
    Resource {
        group,
        versions: &["v1"],
        kind,
        resource,
        singular: singular(resource),
        namespaced,
        short_names: &[],
        categories: &[],
        storage_prefix: "",
        subresources: &[],
        verbs: &["create"],
        name_rule: NameRule::Subdomain,
        strategy: Arc::new(Review::<T>(Typed::default())),
    }
}

fn singular(resource: &'static str) -> &'static str {
    resource.strip_suffix('s').unwrap_or(resource)
}

/// A review kind's strategy: only its schema matters.
struct Review<T>(Typed<T>);

impl<T: DeserializeOwned + Serialize + 'static> Strategy for Review<T> {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        self.0.decode(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reviews_are_create_only_and_type_checked() {
        let all = resources();
        assert_eq!(all.len(), 6);
        for r in &all {
            assert_eq!(r.verbs, &["create"], "{}", r.resource);
            assert_eq!(format!("{}s", r.singular), r.resource);
        }
        let lsar = all
            .iter()
            .find(|r| r.kind == "LocalSubjectAccessReview")
            .expect("lsar");
        assert!(lsar.namespaced);
        let tr = all.iter().find(|r| r.kind == "TokenReview").expect("tr");
        let (obj, unknown) = tr
            .strategy
            .decode(serde_json::json!({"spec": {"token": "t", "bogus": 1}}))
            .expect("decodes");
        assert_eq!(obj["spec"]["token"], "t");
        assert_eq!(unknown, vec!["spec.bogus"]);
    }
}
