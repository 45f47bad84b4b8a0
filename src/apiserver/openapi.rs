//! OpenAPI documents (/openapi/v2 and /openapi/v3), generated from the registry.
//!
//! Invariant: documents describe exactly the served resources.

use std::sync::Arc;

use crate::registry::Registry;

/// Routes for the OpenAPI documents.
pub fn router(_registry: Arc<Registry>) -> axum::Router {
    axum::Router::new()
}
