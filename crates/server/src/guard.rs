//! What every request passes before a handler sees it: the `Host` check
//! (DNS rebinding), authorisation of API writes before their bodies are
//! read, a bound on the form bodies anonymous callers can make the server
//! buffer, and the security headers of every response.

use crate::{ApiError, SharedState};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;

/// No script at all; the pages' only inline content is their stylesheet and
/// SVG. Forms post only to this server; nobody may frame the pages.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
/// The beacon page runs this server's own script, which fetches from the
/// beacon's names and posts its result here.
const BEACON_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; \
     connect-src http: https:; base-uri 'none'; frame-ancestors 'none'";

/// The beacon's routes: fetched and posted by anyone's page.
pub(crate) fn is_beacon(path: &str) -> bool {
    path == "/beacon" || path.starts_with("/beacon/")
}

pub(crate) async fn guard(State(state): State<SharedState>, mut request: Request, next: Next) -> Response {
    let api = is_api(request.uri().path());
    let beacon = is_beacon(request.uri().path());
    if !api {
        negotiate_language(&mut request);
    }
    let response = match admit(&state, &request) {
        Ok(()) => {
            // Forms carry their token in the body: those bodies are bounded
            // (`max_form_bytes`, applied by the router) and only a few are
            // read at once, whoever sends them.
            let form = request.method() == Method::POST && !api && !is_beacon(request.uri().path());
            if form {
                match state.form_slots.clone().try_acquire_owned() {
                    Ok(_permit) => next.run(request).await,
                    Err(_) => ApiError::Busy("too many form submissions at once; try again".into()).into_response(),
                }
            } else {
                next.run(request).await
            }
        }
        Err(e) => e.into_response(),
    };
    let mut response = if api { json_errors(response).await } else { response };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if beacon {
            BEACON_CONTENT_SECURITY_POLICY
        } else {
            CONTENT_SECURITY_POLICY
        }),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// Errors the API's handlers did not make themselves (extractor
/// rejections, 405, 413, 408 from the timeout) in the API's JSON error form.
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).trim().to_string(),
        _ => status.canonical_reason().unwrap_or("error").to_string(),
    };
    let mut out = (status, axum::Json(serde_json::json!({ "error": text }))).into_response();
    for name in [header::WWW_AUTHENTICATE, header::ALLOW, header::RETRY_AFTER] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// A page asked for without `?lang=` is shown in the language the
/// browser's `Accept-Language` prefers among ours (else the configured
/// one): the choice is written into the query the handlers read.
fn negotiate_language(request: &mut Request) {
    let query = request.uri().query().unwrap_or("");
    if query.split('&').any(|kv| kv.starts_with("lang=")) {
        return;
    }
    let Some(lang) = request
        .headers()
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::Lang::negotiate)
    else {
        return;
    };
    let path = request.uri().path();
    let rewritten = if query.is_empty() {
        format!("{path}?lang={}", lang.code())
    } else {
        format!("{path}?{query}&lang={}", lang.code())
    };
    if let Ok(uri) = rewritten.parse() {
        *request.uri_mut() = uri;
    }
}

/// The JSON APIs: the read API and admin writes, the agent and collector APIs.
pub(crate) fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/agent/") || path.starts_with("/collector/")
}

fn admit(state: &SharedState, request: &Request) -> Result<(), ApiError> {
    check_host(state, request)?;
    // API writes check their token before their bodies are read (the
    // `AuthorisedBody` extractor, after the router's 404 and 405).
    let api = is_api(request.uri().path());
    // A body announced larger than the route takes is refused before a byte
    // of it is read (a chunked one is cut off at the limit while it is read).
    let limit = if api {
        state.config.max_body_bytes
    } else {
        state.config.max_form_bytes
    };
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::TooLarge(format!(
            "the body is larger than this server takes ({limit} bytes)"
        )));
    }
    Ok(())
}

/// A browser tricked by DNS rebinding sends the attacker's name as `Host`;
/// only names that are this server's own are served: IP literals (a
/// rebinding page's origin is never an IP literal of ours), `localhost`, and
/// the configured `allowed_hosts`.
fn check_host(state: &SharedState, request: &Request) -> Result<(), ApiError> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    let Some(host) = host else {
        return Err(ApiError::BadRequest("the request has no Host header".into()));
    };
    // The beacon's per-test names are served on the beacon's routes only.
    let beacon_name = is_beacon(request.uri().path()) && state.beacon.as_ref().is_some_and(|b| b.serves_host(&host));
    if beacon_name || host_allowed(&host, &state.config.allowed_hosts) {
        Ok(())
    } else {
        Err(ApiError::MisdirectedHost(host.chars().take(100).collect()))
    }
}

pub(crate) fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((inside, port)) if port.is_empty() || is_port(port) => inside,
            _ => return false,
        },
        None => match host.rsplit_once(':') {
            Some((name, port)) if is_port(port) => name,
            Some(_) => return false,
            None => host,
        },
    };
    let name = name.trim_end_matches('.');
    name.parse::<IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed
            .iter()
            .any(|a| a.trim_end_matches('.').eq_ignore_ascii_case(name))
}

fn is_port(s: &str) -> bool {
    s.strip_prefix(':')
        .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
        || (!s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::host_allowed;
    use crate::Lang;

    #[test]
    fn languages_are_tags_and_accept_language_is_honoured() {
        for (tag, lang) in [
            ("zh-cn", Lang::Zh),
            ("ZH-CN", Lang::Zh),
            ("zh-Hans", Lang::Zh),
            ("en-GB", Lang::En),
        ] {
            assert_eq!(Lang::parse(tag), Some(lang), "{tag}");
        }
        assert_eq!(Lang::parse("fr"), None);
        assert_eq!(Lang::negotiate("zh-CN,zh;q=0.9,en;q=0.8"), Some(Lang::Zh));
        assert_eq!(Lang::negotiate("fr-FR, en;q=0.5, zh;q=0.4"), Some(Lang::En));
        assert_eq!(Lang::negotiate("en;q=0.2, zh-TW;q=0.9"), Some(Lang::Zh));
        assert_eq!(Lang::negotiate("fr, de"), None);
        assert_eq!(Lang::negotiate("zh;q=0, en;q=0"), None);
    }

    #[test]
    fn hosts_of_our_own_pass_and_others_do_not() {
        let allowed = vec!["v6scope.example.net".to_string()];
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8080",
            "[::1]:8080",
            "[2001:db8::1]",
            "localhost:8080",
            "LOCALHOST",
            "v6scope.example.net",
            "V6scope.Example.net.:443",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:8080",
            "127.0.0.1.attacker.example",
            "[::1",
            "[::1]x",
            "",
            "localhost:abc",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }
}
