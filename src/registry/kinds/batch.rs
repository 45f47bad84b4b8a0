//! The batch kinds (registered in `kinds::all`).
//!
//! Invariant: upstream's names, scope, defaults and validation for each kind here.

use crate::registry::Resource;

pub fn resources() -> Vec<Resource> {
    Vec::new()
}
