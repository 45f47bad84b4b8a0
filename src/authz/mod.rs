//! Authorization: may this user do this verb on this resource? Authorizers form a
//! chain (`--authorization-mode`); the first that allows or denies decides; members of
//! `system:masters` are always allowed, as upstream's privileged group.
//!
//! Invariant: no opinion from every authorizer means deny.

use crate::apiserver::request_info::RequestInfo;
use crate::authn::UserInfo;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(String),
    NoOpinion,
}

pub trait Authorizer: Send + Sync + 'static {
    fn authorize(&self, user: &UserInfo, info: &RequestInfo) -> Decision;
}

/// `AlwaysAllow`.
pub struct AlwaysAllow;

impl Authorizer for AlwaysAllow {
    fn authorize(&self, _user: &UserInfo, _info: &RequestInfo) -> Decision {
        Decision::Allow
    }
}

/// `AlwaysDeny`.
pub struct AlwaysDeny;

impl Authorizer for AlwaysDeny {
    fn authorize(&self, _user: &UserInfo, _info: &RequestInfo) -> Decision {
        Decision::Deny(String::new())
    }
}

pub struct Chain {
    pub authorizers: Vec<Box<dyn Authorizer>>,
}

impl Chain {
    pub fn authorize(&self, user: &UserInfo, info: &RequestInfo) -> Decision {
        if user.in_group("system:masters") {
            return Decision::Allow;
        }
        for a in &self.authorizers {
            match a.authorize(user, info) {
                Decision::NoOpinion => continue,
                decided => return decided,
            }
        }
        Decision::Deny(String::new())
    }
}
