//! Facebook Login: the dialog and the token exchanges.

use super::*;

pub(super) fn redirect(location: String) -> Response {
    Response::builder()
        .status(StatusCode::FOUND)
        .header("location", location)
        .body(Body::empty())
        .unwrap()
}

/// The login dialog ("Manually Build a Login Flow"): `client_id`, `redirect_uri`, `state`
/// ("passed back to you, unchanged") required; `response_type` "`code`" is "the default
/// behavior if this parameter is not specified"; `scope` "A comma or space separated list of
/// Permissions". Cancelled: `?error_reason=user_denied&error=access_denied&error_description=
/// Permissions+error.` Facebook Login for Business may send `config_id` instead of `scope` (not
/// verified against Meta's pages; the fake grants [`PUBLISHING_PERMISSIONS`] for it).
pub(super) fn dialog(state: &Shared, p: &Params) -> Response {
    let mut s = state.lock().unwrap();
    if p.get("client_id") != Some(CLIENT_ID) {
        return err(101, None, "OAuthException", "Invalid App ID");
    }
    let Some(redirect_uri) = p.get("redirect_uri") else {
        return bad_param("redirect_uri is required.");
    };
    if !s.redirect_uris.iter().any(|r| r == redirect_uri) {
        return err(
            191,
            None,
            "OAuthException",
            "Can't Load URL: The domain of this URL isn't included in the app's domains.",
        );
    }
    let Some(st) = p.get("state") else {
        return bad_param("state is required.");
    };
    if !matches!(p.get("response_type"), None | Some("code")) {
        return bad_param("The fake supports response_type=code only.");
    }
    let permissions: Vec<String> = match (p.get("scope"), p.get("config_id")) {
        (Some(scope), _) => scope
            .split([',', ' '])
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
            .collect(),
        (None, Some(_)) => PUBLISHING_PERMISSIONS
            .iter()
            .map(|x| x.to_string())
            .collect(),
        (None, None) => vec!["public_profile".into()],
    };
    if let Some(bad) = permissions
        .iter()
        .find(|x| !KNOWN_PERMISSIONS.contains(&x.as_str()))
    {
        return bad_param(&format!("Invalid Scopes: {bad}"));
    }
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    if std::mem::take(&mut s.deny_next_login) {
        return redirect(format!(
            "{redirect_uri}{sep}error_reason=user_denied&error=access_denied&error_description=Permissions+error.&state={}",
            encode(st)
        ));
    }
    let code = token("AQ");
    s.codes.insert(
        code.clone(),
        Code {
            redirect_uri: redirect_uri.to_owned(),
            permissions,
            issued: SystemTime::now(),
            used: false,
        },
    );
    // Facebook appends `#_=_` to the redirect (observed; harmless to a server).
    redirect(format!(
        "{redirect_uri}{sep}code={}&state={}#_=_",
        encode(&code),
        encode(st)
    ))
}

/// `GET /{v}/oauth/access_token`.
/// - Code: `?client_id={app-id}&redirect_uri={redirect-uri}&client_secret={app-secret}&code=
///   {code-parameter}` → `{"access_token": {access-token}, "token_type": {type},
///   "expires_in": {seconds-til-expiration}}`; "`redirect_uri` ... must be the same as the
///   original `request_uri`" (Manually Build a Login Flow).
/// - Long-lived: `?grant_type=fb_exchange_token&client_id={app-id}&client_secret={app-secret}
///   &fb_exchange_token={your-access-token}` → `{"access_token":"{long-lived-user-access-token}",
///   "token_type": "bearer","expires_in": 5183944}`; "You can not use an expired token to
///   request a long-lived token." (Get Long-Lived Tokens).
pub(super) fn oauth_access_token(state: &Shared, p: &Params) -> Response {
    let mut s = state.lock().unwrap();
    if p.get("client_id") != Some(CLIENT_ID) {
        return err(
            101,
            None,
            "OAuthException",
            "Error validating application. Invalid application ID.",
        );
    }
    if p.get("client_secret") != Some(CLIENT_SECRET) {
        return err(1, None, "OAuthException", "Error validating client secret.");
    }
    if let Some(grant) = p.get("grant_type") {
        if grant != "fb_exchange_token" {
            return bad_param("Unsupported grant_type (the fake takes fb_exchange_token).");
        }
        let tok = match authenticate(&s, p.get("fb_exchange_token")) {
            Ok(t) => t,
            Err(r) => return r,
        };
        if matches!(tok.kind, TokenKind::Page(_)) {
            return bad_param("fb_exchange_token takes a user access token (in the fake).");
        }
        let t = s.issue(
            TokenKind::UserLong,
            Some(Duration::from_secs(LONG_LIVED_EXPIRES_IN)),
        );
        s.exchange_calls += 1;
        return json(
            200,
            json!({ "access_token": t, "token_type": "bearer", "expires_in": LONG_LIVED_EXPIRES_IN }),
        );
    }
    let (Some(code), Some(redirect_uri)) = (p.get("code"), p.get("redirect_uri")) else {
        return bad_param("code and redirect_uri are required.");
    };
    let Some(grant) = s.codes.get_mut(code) else {
        return err(
            100,
            None,
            "OAuthException",
            "Invalid verification code format.",
        );
    };
    if grant.used {
        return err(
            100,
            Some(36009),
            "OAuthException",
            "This authorization code has been used.",
        );
    }
    if grant.issued + CODE_TTL <= SystemTime::now() {
        return err(
            100,
            Some(36007),
            "OAuthException",
            "This authorization code has expired.",
        );
    }
    if grant.redirect_uri != redirect_uri {
        return err(
            100,
            None,
            "OAuthException",
            "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
        );
    }
    grant.used = true;
    s.granted = grant.permissions.clone();
    let t = s.issue(TokenKind::UserShort, Some(SHORT_LIVED));
    json(
        200,
        json!({ "access_token": t, "token_type": "bearer", "expires_in": SHORT_LIVED.as_secs() }),
    )
}
