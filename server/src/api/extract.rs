//! Axum's extractors with their rejections turned into our JSON error shape.
use axum::extract::{FromRequest, FromRequestParts, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::AppError;

/// A JSON request body (`Content-Type: application/json`) as `T`.
///
/// A number with a zero fraction (`600.0`) is read as the integer it is: JSON Schema (and so
/// the OpenAPI document) counts it as an integer, and a client or language that writes every
/// number as a float must not get 400 for `"lease_seconds": 600.0`. Other numbers, and every
/// other value, reach `T`'s deserializer unchanged; its error names the field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let axum::Json(value) = axum::Json::<Value>::from_request(req, state).await?;
        from_json_value(value).map(JsonBody)
    }
}

/// `T` from a parsed body, with `JsonBody`'s reading of integral floats.
fn from_json_value<T: DeserializeOwned>(mut value: Value) -> Result<T, AppError> {
    integral_floats_to_integers(&mut value);
    serde_path_to_error::deserialize(value)
        .map_err(|e| AppError::bad_request(format!("Failed to deserialize the JSON body into the target type: {e}")))
}

/// `T` from raw body bytes (a handler that accepts an empty body reads it itself), as
/// `JsonBody` reads it.
pub fn from_json_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| AppError::bad_request(format!("bad request body: {e}")))?;
    from_json_value(value)
}

/// Rewrites, in place, every float with a zero fraction that fits an i64 as that integer.
fn integral_floats_to_integers(value: &mut Value) {
    match value {
        Value::Number(n) if n.is_f64() => {
            // 2^63 is exactly representable; every f64 strictly inside ±2^63 fits an i64.
            const LIMIT: f64 = 9_223_372_036_854_775_808.0;
            if let Some(f) = n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < LIMIT) {
                *n = serde_json::Number::from(f as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_to_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_to_integers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_become_integers_and_nothing_else_changes() {
        let mut v = serde_json::json!({"a": 600.0, "b": [1.5, -3.0, 1e300], "c": "600.0", "d": 7, "e": -0.0});
        integral_floats_to_integers(&mut v);
        assert_eq!(v, serde_json::json!({"a": 600, "b": [1.5, -3, 1e300], "c": "600.0", "d": 7, "e": 0}));
        assert!(v["a"].is_i64());
    }
}

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct PathParam<T>(pub T);

#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct QueryParams<T>(pub T);

/// The client's IP address, when the server runs with connection info (`mirrorset serve`
/// does); None otherwise, rather than a failed request.
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::ConnectInfo;
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())))
    }
}
